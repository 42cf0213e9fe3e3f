"""Positive and negative controls: every claim names its mechanism, and a preset per removable
mechanism runs the claims on a world without it (docs/benchmark.md, "Controls").

What each control removes from the generated data is measured in tests/test_world.py; here: the
names agree everywhere, the presets change nothing but ``world.remove``, the documented command
plans the claims, and the switch reaches the corpus and the tasks the workflow builds.
"""
import subprocess
import sys

import datasets
import pytest

from bert_ablation import config as cfg
from bert_ablation.data.world import World
from bert_ablation.evaluation.claim_spec import ClaimError, load_claims, validate_claims
from bert_ablation.facts.mechanisms import MECHANISMS, REMOVABLE
from tests.test_workflow import ROOT, planned_jobs


def _command(preset: str, workdir, *targets: str, dry_run: bool = True) -> str:
    """The command docs/benchmark.md gives, run from the repository root (targets before --configfile)."""
    command = [sys.executable, "-m", "snakemake", *(["-n"] if dry_run else []), "--cores", "1", *targets,
               "--configfile", f"presets/{preset}.yaml", "--directory", str(workdir)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def test_the_schema_offers_exactly_the_removable_mechanisms():
    remove = cfg.schema()["properties"]["world"]["properties"]["remove"]
    assert remove["items"]["enum"] == list(REMOVABLE) and remove["default"] == []
    assert set(REMOVABLE) < set(MECHANISMS)


def test_every_packaged_claim_names_a_mechanism():
    claims = load_claims()
    assert len(claims) == 28 and all(c.get("mechanism") in MECHANISMS for c in claims)
    named = {c["mechanism"] for c in claims}
    assert set(REMOVABLE) <= named, "a removable mechanism that no claim names has no use as a control"


def test_an_unknown_mechanism_names_the_claim_and_the_known_ones():
    claim = {"id": "my-claim", "claim": "A > B", "source": "test", "kind": "greater", "table": "t", "column": "c",
             "better": "A", "worse": "B", "mechanism": "magic"}
    known = ".*".join(MECHANISMS)
    with pytest.raises(ClaimError, match=f"claim 'my-claim': field 'mechanism': unknown mechanism 'magic'.*{known}"):
        validate_claims([claim])
    with pytest.raises(ClaimError, match="field 'mechanism'"):
        validate_claims([{**claim, "mechanism": ["right_context"]}])
    valid = validate_claims([{**claim, "mechanism": "right_context"}])
    assert valid[0]["mechanism"] == "right_context" and validate_claims(valid) == valid
    assert "mechanism" not in validate_claims([{k: v for k, v in claim.items() if k != "mechanism"}])[0]


@pytest.mark.parametrize("mechanism", REMOVABLE)
def test_a_control_preset_changes_only_world_remove(mechanism):
    default = cfg.load(str(ROOT / "config.yaml"), [])
    control = cfg.load(str(ROOT / "config.yaml"), [str(ROOT / "presets" / f"control_{mechanism}.yaml")])
    assert control["world"]["remove"] == [mechanism] and default["world"]["remove"] == []
    control["world"]["remove"] = []
    assert control == default


@pytest.mark.parametrize("mechanism", REMOVABLE)
def test_the_documented_command_plans_the_claims_of_a_control(tmp_path, mechanism):
    jobs = planned_jobs(_command(f"control_{mechanism}", tmp_path / f"results-control-{mechanism}", "claims"))
    assert jobs["corpus"] == 1 and jobs["tasks"] == 6 and jobs["pretrain"] == 14 * 3
    assert jobs["table"] == 5 and jobs["claims"] == 1


def test_the_switch_reaches_the_corpus_and_the_tasks_the_workflow_builds(tmp_path):
    """Builds the corpus and MRPC of the right_context control (seconds): they are the control
    world's, not the default's."""
    _command("control_right_context", tmp_path, "results/corpus/shard-0", "results/tasks/mrpc", dry_run=False)
    control, default = World(seed=0, scale=1.0, remove=("right_context",)), World(seed=0, scale=1.0)
    corpus = sorted(tuple(row["sentences"]) for row in datasets.load_from_disk(str(tmp_path / "results/corpus/shard-0")))
    assert corpus == sorted(map(tuple, control.documents())) != sorted(map(tuple, default.documents()))
    mrpc = datasets.load_from_disk(str(tmp_path / "results/tasks/mrpc"))["validation"]
    expected = control.task("mrpc", 1000, 300, seed=0)["validation"]
    assert list(mrpc["sentence1"]) == [r["sentence1"] for r in expected]
    assert list(mrpc["label"]) == [r["label"] for r in expected]


def test_the_controls_table_flags_a_removed_mechanisms_claim_reproduced_and_a_moved_negative_control(tmp_path):
    import importlib.util
    from pathlib import Path

    import pandas as pd

    spec = importlib.util.spec_from_file_location("controls_table", Path(__file__).parents[1] / "benchmarks/controls_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    columns = ["id", "mechanism", "verdict", "effect", "ci_low", "ci_high", "reason"]
    rows = {"default": [("mlm-beats-ltr-squad", "right_context", "inconclusive", 2.0, -1.0, 5.0, ""),
                        ("more-heads-lower-ppl", "capacity", "inconclusive", 0.5, -0.2, 1.2, ""),
                        ("nsp-helps-mnli", "cross_segment", "not testable", float("nan"), float("nan"), float("nan"),
                         "not testable at this scale (cross_segment): nsp_formed: run x ...")],
            "control": [("mlm-beats-ltr-squad", "right_context", "reproduced", 4.0, 3.0, 5.0, ""),
                        ("more-heads-lower-ppl", "capacity", "contradicted", -0.5, -1.0, -0.1, ""),
                        ("nsp-helps-mnli", "cross_segment", "inconclusive", 0.1, -1.0, 1.0, "")]}
    # the world's own numbers (docs/benchmark.md): an effect that moved with both verdicts
    # inconclusive, intervals apart; a size claim that became testable when a run left the plateau
    rows["default"] += [("ppl-falls-with-size", "capacity", "not testable", float("nan"), float("nan"),
                         float("nan"), "not testable at this scale (capacity): left_plateau: size_wide ..."),
                        ("largest-best-sst2", "capacity", "inconclusive", 5.57, 2.22, 8.93, "")]
    rows["control"] += [("ppl-falls-with-size", "capacity", "inconclusive", -1.93, -3.28, -0.57, ""),
                        ("largest-best-sst2", "capacity", "inconclusive", -1.93, -3.28, -0.57, "")]
    for name, records in rows.items():
        (tmp_path / name / "results").mkdir(parents=True)
        pd.DataFrame(records, columns=columns).to_csv(tmp_path / name / "results" / "claims.csv", index=False)
    table, problems, notes = module.controls_table(tmp_path / "default", {"right_context": tmp_path / "control"})
    assert problems == ["mlm-beats-ltr-squad: reproduced without its mechanism right_context",
                        "more-heads-lower-ppl (capacity, a model property): inconclusive -> contradicted without "
                        "right_context",
                        "largest-best-sst2 (capacity, a model property): effect +5.57 [+2.22, +8.93] -> "
                        "-1.93 [-3.28, -0.57] without right_context (intervals apart)"]
    assert notes == ["ppl-falls-with-size (capacity, a model property): not testable -> inconclusive without "
                     "right_context (a precondition moved)"]
    assert "| `mlm-beats-ltr-squad` | right_context | inconclusive, +2.00 [-1.00, +5.00] | reproduced, +4.00" in table
    assert "nsp-helps-mnli" not in table  # neither the removed mechanism's nor a model property's
