"""The pins live in requirements.txt; the conda env file must agree with them, and
pyproject.toml's dependencies must be exactly what the package imports."""
import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_conda_env_mirrors_the_pinned_requirements():
    pins = {line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith(("#", "-e"))}
    env = yaml.safe_load((ROOT / "envs/bert-ablation.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert {p for p in pip if not p.startswith("-e")} == pins
    assert "torch==2.13.0" in pins


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> files of src/ importing it (absolute imports not of the stdlib or the package;
    imports inside functions count: a lazy import is still needed at run time)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "src").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("__future__", "bert_ablation"):
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_declared_dependencies_are_exactly_the_third_party_imports():
    declared = {_canonical(re.match(r"[A-Za-z0-9._-]+", d).group())
                for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    imports = _third_party_imports()
    assert {"torch", "seqeval", "yaml", "sklearn"} <= set(imports)  # the parse sees lazy and aliased imports
    providers = packages_distributions()  # module -> installed distributions (yaml -> PyYAML)
    unknown = sorted(m for m in imports if m not in providers)
    assert not unknown, f"imported but provided by no installed distribution: {unknown}"
    needed = {m: {_canonical(d) for d in providers[m]} for m in imports}
    undeclared = {m: sorted(files) for m, files in imports.items() if not needed[m] & declared}
    assert not undeclared, f"imported in src/ but not in pyproject.toml's dependencies: {undeclared}"
    used = set().union(*needed.values())
    assert declared <= used, f"declared in pyproject.toml but never imported in src/: {sorted(declared - used)}"
