"""Pretraining seeds as a factor (pretrain.seeds), the Multi-Bootstrap over seeds and restarts,
and the preconditions that make a claim testable (issue 28)."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from bert_ablation import config as cfg
from bert_ablation import plan
from bert_ablation.evaluation import preconditions
from bert_ablation.evaluation.claims import judge_claims
from bert_ablation.evaluation.statistics import Difference, Sample, design, seeds_needed
from bert_ablation.evaluation.tables import write_table
from bert_ablation.facts import mechanisms
from bert_ablation.plan import Cell
from bert_ablation.storage import read_json, write_json


def _config(**pretrain):
    """config.yaml with these pretrain keys in the world's layer (where its seeds live)."""
    config = cfg.load("config.yaml", [])
    config["world_recipe"]["pretrain"].update(pretrain)
    return config


# ----------------------------------------------------------------------------- the seed factor

def test_seed_runs_keep_seed_zero_and_shift_every_seed_of_the_others():
    one, three = _config(seeds=1), _config(seeds=3)
    assert plan.seed_runs(three, "bert_base") == ["bert_base", "bert_base.seed1", "bert_base.seed2"]
    # seed 0 is the run it always was: same spec, same hash, whatever pretrain.seeds says
    assert plan.resolve_ablation(three, "bert_base") == plan.resolve_ablation(one, "bert_base")
    assert plan.spec_hash(three, "bert_base") == plan.spec_hash(one, "bert_base")
    assert "seeds" not in plan.resolve_ablation(three, "bert_base")["pretrain"]
    second = plan.resolve_ablation(three, "bert_base.seed2")
    assert second["pretrain"]["seed"] == one["pretrain"]["seed"] + 2 and second["name"] == "bert_base.seed2"
    hashes = {plan.spec_hash(three, run) for run in plan.seed_runs(three, "bert_base")}
    assert len(hashes) == 3
    assert len(plan.pretrain_runs(three)) == 3 * len(plan.pretrain_runs(one))
    # one fine-tuning job per grid point fine-tunes every seed's checkpoint: seeds x restarts outputs
    assert plan.finetune_runs(three) == plan.finetune_runs(one)
    assert plan.job_restarts(three) == 3 * three["finetune"]["restarts"] and plan.job_restarts(one) == 1
    with pytest.raises(cfg.ConfigError, match="has 3 pretraining seed"):
        plan.resolve_ablation(three, "bert_base.seed3")


def test_a_seed_set_apart_stays_fixed_across_seed_runs_and_the_count_is_one_for_all():
    config = _config(seeds=2, data_seed=7)
    runs = [plan.resolve_ablation(config, r)["pretrain"] for r in plan.seed_runs(config, "bert_base")]
    assert [r["seed"] for r in runs] == [0, 1] and [r["data_seed"] for r in runs] == [7, 7]
    # the world's count is the world's: a preset on real text sets its own at the top level
    real = {**config, "corpus": {**config["corpus"], "source": "text"}}
    assert plan.pretrain_seeds(config) == 2 and plan.pretrain_seeds(real) == config["pretrain"]["seeds"] == 1
    config["ablations"]["ltr"]["pretrain"] = {"seeds": 4}
    with pytest.raises(cfg.ConfigError, match="pretrain.seeds.*one count for every ablation"):
        cfg.validate(config)


def test_table_cells_name_every_seed_run_and_the_schema_validates_the_count():
    config = _config(seeds=2)
    cell = next(c for c in plan.table_cells(config, "table5") if c.ablation == "bert_base")
    assert [r for r, _ in cell.seed_runs()] == ["bert_base", "bert_base.seed1"]
    assert Cell(**json.loads(json.dumps(cell.__dict__))) == cell  # params round-trip (JSON lists -> tuples)
    with pytest.raises(cfg.ConfigError, match="seeds"):
        cfg.validate({**config, "pretrain": {**config["pretrain"], "seeds": 0}})


def _pretrain(tmp_path, run, seed, ppl, nsp=None, status="learnt"):
    path = tmp_path / f"{run}.pretrain.json"
    write_json(path, {"ablation": run, "spec_hash": f"h-{run}", "steps": 700, "heldout_perplexity": ppl,
                      "heldout_nsp_accuracy": nsp, "seeds": {"init_seed": seed, "data_seed": seed, "mask_seed": seed},
                      "health": {"status": status, "problems": [], "perplexity_ratio": ppl / 100},
                      "model": {"layers": 4, "hidden": 64, "heads": 2}})
    return str(path)


def _finetune(tmp_path, run, restart, dev):
    path = tmp_path / f"{run}.{restart}.json"
    write_json(path, {"ablation": run, "checkpoint": f"results/pretrain/{run}/checkpoints/final", "task": "sst2",
                      "head": "linear", "hyperparameters": {"key": "lr1"}, "restart": restart,
                      "dev_split": "validation", "splits": {"validation": {"accuracy": dev}},
                      "chance": {"validation": {"accuracy": 50.9}}, "init_seed": restart, "data_seed": restart,
                      "pretrain_spec_hash": f"h-{run}", "finetune_hash": "f"})
    return str(path)


def test_tables_report_the_mean_over_seeds_with_both_spreads(tmp_path):
    runs = ["bert_base", "bert_base.seed1", "bert_base.seed2"]
    values = {runs[0]: [80.0, 82.0], runs[1]: [70.0, 72.0], runs[2]: [75.0, 77.0]}
    metrics = [_finetune(tmp_path, r, k, v) for r in runs for k, v in enumerate(values[r])]
    pretrained = [_pretrain(tmp_path, r, k, ppl) for k, (r, ppl) in enumerate(zip(runs, (6.0, 7.0, 8.0)))]
    base = {"paper_row": "BERT-Base", "row": "BERT-Base", "ablation": "bert_base", "head": "linear", "step": "final",
            "task": "sst2", "spec_hash": "h-bert_base", "origin": "pretrain", "split": None,
            "runs": tuple((r, f"h-{r}") for r in runs)}
    cells = [Cell(**base, column="SST-2 (Acc)", source="finetune", metric="accuracy"),
             Cell(**base, column="LM (ppl)", source="pretrain", metric="heldout_perplexity")]
    outputs = {ext: str(tmp_path / f"t.{ext}") for ext in ("csv", "md", "tex", "png", "pdf")}
    outputs["provenance"] = str(tmp_path / "t.provenance.json")
    write_table(cells, "table5", metrics, pretrained, outputs)
    table = pd.read_csv(outputs["csv"]).set_index("column")
    sst2 = table.loc["SST-2 (Acc)"]
    assert sst2["mean"] == pytest.approx(76.0) and sst2["n"] == 6 and sst2["seeds"] == 3
    assert sst2["sd_seed"] == pytest.approx(np.std([81.0, 71.0, 76.0], ddof=1))  # the seed means' sd: 5
    assert sst2["sd_restart"] == pytest.approx(np.sqrt(3 * 2 / 3), abs=1e-4)  # CSV: 4 digits  # pooled within seeds: sqrt(2)
    ppl = table.loc["LM (ppl)"]
    assert ppl["mean"] == pytest.approx(7.0) and ppl["sd_seed"] == pytest.approx(1.0) and ppl["n"] == 3
    md = open(outputs["md"]).read()
    assert "76.0 ± 5.0 s ± 1.4 r" in md and "3 pretraining seeds" in md and "7.00 ± 1.00 s" in md
    provenance = read_json(outputs["provenance"])["cells"][0]
    assert [r["pretrain_seed"] for r in provenance["restarts"]] == [0, 0, 1, 1, 2, 2]
    assert [r["run"] for r in provenance["seed_runs"]] == runs and provenance["chance"] == 50.9


def test_a_cell_with_one_seed_that_did_not_learn_is_not_learnt(tmp_path):
    runs = ["bert_base", "bert_base.seed1"]
    metrics = [_finetune(tmp_path, r, 0, 80.0) for r in runs]
    pretrained = [_pretrain(tmp_path, runs[0], 0, 6.0), _pretrain(tmp_path, runs[1], 1, 90.0, status="plateau")]
    read = read_json(pretrained[1])
    read["health"]["problems"] = [{"status": "plateau", "detail": "perplexity 90 vs 100", "fix": "x"}]
    write_json(pretrained[1], read)
    cell = Cell(paper_row="BERT-Base", row="BERT-Base", ablation="bert_base", head="linear", step="final",
                task="sst2", spec_hash="h-bert_base", origin="pretrain", split=None, column="SST-2 (Acc)",
                source="finetune", metric="accuracy", runs=tuple((r, f"h-{r}") for r in runs))
    outputs = {ext: str(tmp_path / f"t.{ext}") for ext in ("csv", "md", "tex", "png", "pdf")}
    outputs["provenance"] = str(tmp_path / "t.provenance.json")
    write_table([cell], "table5", metrics, pretrained, outputs)
    provenance = read_json(outputs["provenance"])["cells"][0]
    assert provenance["not_learnt"].startswith("bert_base.seed1: plateau") and provenance["pretrain_health"] == "plateau"


# ----------------------------------------------------------------------------- the Multi-Bootstrap

def _exact_p(a_groups, b_groups, shift, paired):
    """P(resampled mean(a) - mean(b) <= shift) by enumerating every equally likely resample."""
    def outcomes(groups, seed_draw):
        per_seed = [list(itertools.product(groups[s], repeat=len(groups[s]))) for s in seed_draw]
        return [np.mean([v for draw in combo for v in draw]) for combo in itertools.product(*per_seed)]

    n = len(a_groups)
    total, hits = 0, 0
    for draw_a in itertools.product(range(n), repeat=n):
        for draw_b in ([draw_a] if paired else itertools.product(range(len(b_groups)), repeat=len(b_groups))):
            for ma in outcomes(a_groups, draw_a):
                for mb in outcomes(b_groups, draw_b):
                    total += 1
                    hits += ma - mb <= shift
    return hits / total


@pytest.mark.parametrize("paired", [True, False])
def test_multibootstrap_matches_the_enumerated_resampling_distribution(paired):
    a_groups, b_groups = [[1.0, 3.0], [6.0, 6.5]], [[2.0, 2.5], [4.0, 5.0]]
    b_seeds = ["s0", "s0", "s1", "s1"] if paired else ["t0", "t0", "t1", "t1"]
    a = Sample.of(np.concatenate(a_groups), ["s0", "s0", "s1", "s1"])
    b = Sample.of(np.concatenate(b_groups), b_seeds)
    difference = Difference(a, b, "multibootstrap", 0.05, 200_000, np.random.default_rng(0))
    assert difference.design.paired is paired and difference.design.units == "seeds"
    for shift in (0.0, 1.0):
        exact = _exact_p(a_groups, b_groups, shift, paired)
        p_holds, _ = difference.one_sided_p(shift)
        # the Monte-Carlo p, or the design's floor where the resampling distribution goes below it
        assert p_holds == pytest.approx(max(exact, difference.floor), abs=0.004)
    assert difference.floor == (0.25 if paired else 1 / 6)  # 2^-2 sign flips; C(4, 2) arrangements


def test_resolution_floor_and_the_seeds_a_verdict_needs():
    three = Sample.of([1.0, 2.0, 3.0], ["a", "b", "c"])
    assert design(three, Sample.of([0.0, 0.5, 0.7], ["a", "b", "c"])).floor == 1 / 8
    assert design(three, Sample.of([0.0, 0.5, 0.7], ["x", "y", "z"])).floor == 1 / 20
    one = design(Sample.of([1.0, 2.0, 3.0]), Sample.of([0.0, 0.5, 0.7]))
    assert one.units == "restarts" and one.floor == 1 / 20 and "pretraining variance ignored" in one.describe()
    assert seeds_needed(0.05) == 5 and seeds_needed(0.05, 40) == 10  # 2^-5 < 0.05; 2^-10 < 0.05 / 40
    # every paired seed in the claimed direction: the bootstrap alone would say p = 1/(B+1)
    diff = Difference(three, Sample.of([0.0, 0.5, 0.7], ["a", "b", "c"]), "multibootstrap", 0.05, 5000,
                      np.random.default_rng(1))
    assert diff.one_sided_p(0.0)[0] == 1 / 8


def _greater_claim():
    return {"id": "t", "claim": "A > B", "source": "test", "kind": "greater", "table": "t", "column": "c",
            "better": "A", "worse": "B", "mechanism": "none"}


def test_a_difference_between_pretraining_seeds_is_no_difference_between_ablations():
    """Two arms of one recipe, only their pretraining seeds differ. One run each, tight restarts:
    the restart-level test reports a difference. Seeds resampled, it does not."""
    rng = np.random.default_rng(0)
    effects = {"A": [1.0, -0.8, 0.4, 0.9, -0.3], "B": [0.8, -0.6, 0.2, 1.1, -0.5]}  # one recipe, ten seeds
    # one run per arm, as before pretrain.seeds: A's first seed against B's last, restarts sd 0.1
    a, b = effects["A"][0] + rng.normal(0, 0.1, 5), effects["B"][-1] + rng.normal(0, 0.1, 5)
    old = judge_claims([_greater_claim()], {("t", "A", "c"): a, ("t", "B", "c"): b}, test="welch").iloc[0]
    assert old.verdict == "reproduced"
    cells = {("t", row, "c"): Sample.of(np.repeat(effects[row], 3) + rng.normal(0, 0.1, 15),
                                        np.repeat([f"{row}{s}" for s in range(5)], 3)) for row in "AB"}
    new = judge_claims([_greater_claim()], cells, bootstrap_samples=4000).iloc[0]
    assert new.verdict_uncorrected == "inconclusive" and "5 vs 5 seeds" in new.seeds


def test_under_no_difference_the_multibootstrap_errs_far_less_often_than_restart_level_tests():
    """300 simulated pairs of one recipe (seed sd 1 >> restart sd 0.1, 6 paired seeds x 4 restarts):
    how often each test calls a difference at alpha 0.05. Measured: Welch on the pooled restarts 23%,
    the Multi-Bootstrap 9% (a percentile bootstrap's tails are short at few seeds: docs/claims.md)."""
    rng = np.random.default_rng(7)
    claim, rejections = _greater_claim(), {"welch": 0, "multibootstrap": 0}
    for trial in range(300):
        shared = rng.normal(0, 0.5, 6)  # what a seed does to both arms alike (paired)
        cells = {("t", row, "c"): Sample.of(np.repeat(shared + rng.normal(0, 1.0, 6), 4) + rng.normal(0, 0.1, 24),
                                            np.repeat([f"s{k}" for k in range(6)], 4)) for row in "AB"}
        for test in rejections:
            verdict = judge_claims([claim], cells, test=test, bootstrap_samples=1000, seed=trial).iloc[0]
            rejections[test] += verdict.verdict_uncorrected == "reproduced"
    assert rejections["welch"] / 300 > 0.18
    assert rejections["multibootstrap"] / 300 < 0.12 and rejections["multibootstrap"] < rejections["welch"] / 2


# ----------------------------------------------------------------------------- preconditions

def test_every_mechanism_names_checks_that_exist():
    assert set(mechanisms.PRECONDITIONS) == set(mechanisms.MECHANISMS)
    assert set(preconditions.MEASURES) == set(mechanisms.CHECKS)
    assert {c for checks in mechanisms.PRECONDITIONS.values() for c in checks} <= set(mechanisms.CHECKS)


def _facts(nsp=0.9, ratio=0.1, cosine=0.2, chance=50.0):
    run = {"run": "r", "heldout_nsp_accuracy": nsp, "perplexity_ratio": ratio, "last_layer_cosine": cosine}
    return {("t", row, "c"): {"seed_runs": [{**run, "run": f"{row}-run"}], "chance": chance} for row in "AB"}


@pytest.mark.parametrize("mechanism, facts, means, expected", [
    ("none", _facts(), {"A": 80.0, "B": 70.0}, None),
    ("none", _facts(), {"A": 58.0, "B": 51.0}, "task_learnt: no row of t / c learnt the task: the best, A, scores 58.0 "
                                               "against a constant classifier's 50.0 (needs +10)"),
    ("none", _facts(chance=None), {"A": 58.0, "B": 51.0}, None),  # not a classification column
    ("cross_segment", _facts(nsp=0.66), {"A": 80.0, "B": 70.0},
     "nsp_formed: run A-run tells a true next segment from a random one 66% of the time (needs 75%)"),
    ("cross_segment", _facts(nsp=None), {"A": 80.0, "B": 70.0}, None),  # no NSP run: the task check stands
    ("capacity", _facts(ratio=0.9), {"A": 80.0, "B": 70.0},
     "left_plateau: run A-run ends at 0.90 x the unigram perplexity (needs at most 0.5)"),
    ("masking_mix", _facts(cosine=0.95), {"A": 80.0, "B": 70.0},
     "no_collapse: run A-run's last-layer token states have mean cosine 0.95 (needs at most 0.6)"),
    ("heldout_words", _facts(nsp=0.5, ratio=0.9, cosine=0.9), {"A": 80.0, "B": 70.0}, None),  # not its checks
])
def test_each_precondition_fires_with_its_value_and_level(mechanism, facts, means, expected):
    keys = [("t", "A", "c"), ("t", "B", "c")]
    assert preconditions.failed_check(mechanism, keys, facts, {("t", r, "c"): v for r, v in means.items()}) == expected


def _seed_facts(**rows):
    return {("t", row, "c"): {"chance": None, "seed_runs": [
        {"run": f"{row}.seed{k}", "perplexity_ratio": 0.1, "heldout_perplexity": p} for k, p in enumerate(ppl)]}
        for row, ppl in rows.items()}


def test_a_capacity_claim_needs_each_rows_pretraining_seeds_to_agree_on_perplexity():
    """The one-head row that flipped under a control (docs/benchmark.md): seeds 1.67x apart."""
    keys, means = [("t", "A", "c"), ("t", "B", "c")], {("t", "A", "c"): 7.6, ("t", "B", "c"): 13.0}
    late = _seed_facts(A=[7.4, 7.6, 7.8], B=[9.9, 12.5, 16.5])
    assert preconditions.failed_check("capacity", keys, late, means) == (
        "seeds_agree: row B's pretraining seeds end at held-out perplexity 9.9 to 16.5 (1.67 x; needs at most 1.25 x)")
    assert preconditions.failed_check("capacity", keys, _seed_facts(A=[7.4, 7.6, 7.8], B=[5.5, 5.8, 6.1]), means) is None
    assert preconditions.failed_check("capacity", keys, _seed_facts(A=[7.4], B=[16.5]), means) is None  # one seed
    assert preconditions.failed_check("right_context", keys, late, means) is None  # a capacity check only


def test_a_claim_whose_mechanism_did_not_form_is_not_testable_never_inconclusive():
    cells = {("t", "A", "c"): np.array([58.0, 58.5, 57.5]), ("t", "B", "c"): np.array([51.0, 51.5, 50.5])}
    claim = {**_greater_claim(), "mechanism": "cross_segment"}
    row = judge_claims([claim], cells, test="welch", facts=_facts(nsp=0.66)).iloc[0]
    assert row.verdict == "not testable" and "nsp_formed" in row.reason and row.tests == 0
    assert judge_claims([claim], cells, test="welch").iloc[0].verdict == "reproduced"  # no facts: no check
