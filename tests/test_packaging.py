"""The pins live in requirements.txt; the conda env file must agree with them."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_conda_env_mirrors_the_pinned_requirements():
    pins = {line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith(("#", "-e"))}
    env = yaml.safe_load((ROOT / "envs/bert-ablation.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert {p for p in pip if not p.startswith("-e")} == pins
    assert "torch==2.13.0" in pins
