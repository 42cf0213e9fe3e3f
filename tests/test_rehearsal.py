"""A rehearsal keeps every shape and protocol of a config, shrinks only its budgets, and
extrapolates what its jobs measured to the full run."""
import importlib.util
import json
import time

import pytest

from bert_ablation import config as cfg
from bert_ablation import estimate as estimate_module
from bert_ablation import plan, preset_table, rehearsal, rehearsal_report
from bert_ablation.estimate import estimate
from bert_ablation.schema import ConfigError
from tests.test_workflow import ROOT

SHAPES = ("model", "masking", "objective", "packing")


def record_rehearsal():
    """benchmarks/record_rehearsal.py, a script, as a module."""
    spec = importlib.util.spec_from_file_location("record_rehearsal", ROOT / "benchmarks" / "record_rehearsal.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def preset(name: str, **overrides) -> dict:
    config = cfg.load(str(ROOT / "config.yaml"), [str(ROOT / "presets" / f"{name}.yaml")])
    return cfg.validate({**config, **overrides})


@pytest.mark.parametrize("name", ["small", "base", "paper", "released"])
def test_rehearsal_keeps_every_shape_and_shrinks_only_budgets(name):
    full = preset(name)
    small = rehearsal.rehearse({**full, "rehearse": True})
    for key in ("tokenizer", "tables", "figures", "checkpoints", "model", "masking"):
        assert small[key] == full[key], key
    assert small["instances"] == {**full["instances"], "dupe_factor": 1}
    for ablation in full["ablations"]:
        big, tiny = plan.resolve_ablation(full, ablation), plan.resolve_ablation(small, ablation)
        assert {k: tiny[k] for k in SHAPES} == {k: big[k] for k in SHAPES}
        keep = ("lr", "short_seq_length", "adam_bias_correction", "adam_betas", "weight_decay", "precision", "seed")
        assert {k: tiny["pretrain"][k] for k in keep} == {k: big["pretrain"][k] for k in keep}
        train = tiny["pretrain"]
        if big["pretrain"]["steps"] == 0:
            assert train["steps"] == 0 and train["save_steps"] == []
            continue
        phases = 2 if big["pretrain"]["short_seq_steps"] else 1
        assert train["steps"] == max(2 * phases, len(big["pretrain"]["save_steps"]) + 1)
        assert train["short_seq_steps"] == (2 if phases == 2 else 0)
        # every saved checkpoint kept, at distinct steps before the last
        assert len(train["save_steps"]) == len(big["pretrain"]["save_steps"])
        assert sorted(set(train["save_steps"])) == train["save_steps"] and all(
            0 < s < train["steps"] for s in train["save_steps"])
        assert (train["batch_size"], train["accumulation_steps"], train["eval_batches"]) == (4, 2, 1)
    for task, settings in full["tasks"].items():
        shrunk = small["tasks"][task]
        assert {k: v for k, v in shrunk.items() if k not in ("grid", "max_train_examples", "max_eval_examples")} == {
            k: v for k, v in settings.items() if k not in ("grid", "max_train_examples", "max_eval_examples")}
        assert (shrunk["max_train_examples"], shrunk["max_eval_examples"]) == (8, 16)
    # one grid point per (model, task, head): the same cells, each one job, one restart
    assert small["finetune"]["restarts"] == 1
    runs = plan.finetune_runs(small)
    assert len(runs) == len({(r.ablation, r.step, r.task, r.head) for r in runs})
    assert {(c.ablation, c.task, c.head) for t in plan.report_names(full) for c in plan.table_cells(full, t)} == {
        (c.ablation, c.task, c.head) for t in plan.report_names(small) for c in plan.table_cells(small, t)}
    assert all(p.batch_size == 4 and p.epochs <= 2 for r in runs for p in [plan.grid_point(small, r.task, r.head, r.hp)])
    assert small["corpus"]["shards"] == min(2, full["corpus"]["shards"])
    assert small["corpus"]["hf"]["max_documents"] == 300


def test_paper_rehearsal_runs_both_phases_and_figure5_checkpoints():
    small = rehearsal.rehearse({**preset("paper"), "rehearse": True})
    train = plan.resolve_ablation(small, "bert_base")["pretrain"]
    # 900k of 1M at 128, then 512; checkpoints at 200k..800k -> the same fractions of 5 steps
    assert (train["steps"], train["short_seq_steps"], train["save_steps"]) == (5, 2, [1, 2, 3, 4])
    assert plan.checkpoint_steps(small, "bert_base") == plan.checkpoint_steps(small, "ltr") == [1, 2, 3, 4, 5]


def test_rehearse_false_changes_nothing_and_bad_budgets_are_refused():
    full = preset("small")
    assert rehearsal.rehearse(full) is full
    with pytest.raises(ConfigError, match=r"rehearsal.accumulation_steps=3 does not divide rehearsal.batch_size=4"):
        rehearsal.rehearse({**full, "rehearse": True, "rehearsal": {**full["rehearsal"], "accumulation_steps": 3}})


def test_task_example_caps_keep_the_first_examples(tmp_path):
    from bert_ablation.data.task_sources import build_task

    settings = cfg.validate({"tasks": {"sst2": {"n_train": 40, "n_dev": 20, "max_train_examples": 7,
                                                "max_eval_examples": 5}}})
    summary = build_task("sst2", settings["tasks"]["sst2"], settings["world"], str(tmp_path / "sst2"))
    assert (summary["train"]["rows"], summary["validation"]["rows"]) == (7, 5)
    uncapped = cfg.validate({"tasks": {"sst2": {"n_train": 40, "n_dev": 20}}})
    summary = build_task("sst2", uncapped["tasks"]["sst2"], uncapped["world"], str(tmp_path / "all"))
    assert (summary["train"]["rows"], summary["validation"]["rows"]) == (40, 20)


def test_profile_requests_evaluate_the_first_attempt():
    profile = {"default-resources": {"mem_mb": "4000 * attempt", "runtime": "60 * attempt"},
               "set-resources": {"pretrain": {"mem_mb": "16000 * attempt", "gpu": 1}}}
    own = {"pretrain": {"mem_mb": 8000, "runtime": 240, "gpu": 0}, "tasks": {"mem_mb": 4000, "runtime": 60}}
    assert rehearsal_report.profile_requests(profile, own) == {
        "pretrain": {"mem_mb": 16000, "runtime": 60, "gpu": 1}, "tasks": {"mem_mb": 4000, "runtime": 60, "gpu": None}}
    assert rehearsal_report.profile_requests(None, own)["pretrain"] == {"mem_mb": 8000, "runtime": 240, "gpu": 0}


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if isinstance(data, dict) else data)


def test_report_extrapolates_measured_steps_to_the_full_run(tmp_path):
    """Hand-made measurements of a paper rehearsal: the full-run numbers follow from the plan."""
    full = preset("paper")
    small = rehearsal.rehearse({**full, "rehearse": True})
    benchmark = "s\th:m:s\tmax_rss\tmax_vms\n{}\t0:00:01\t{}\t1\n"
    _write(tmp_path / "logs/corpus/shard-0.benchmark.tsv", benchmark.format(12.0, 500.0))
    _write(tmp_path / "logs/tables/table5.benchmark.tsv", benchmark.format(2.0, 300.0))  # the fastest: startup
    _write(tmp_path / "results/corpus/shard-0/data.arrow", "x" * 1000)
    _write(tmp_path / "results/corpus/shard-1/data.arrow", "x" * 1000)
    parameters = 110_000_000
    _write(tmp_path / "results/pretrain/bert_base/metrics.json", {
        "device": "cpu", "resumed_from_step": 0, "parameters": parameters, "peak_rss_mb": 3000.0,
        "step_seconds": [9.0, 1.0, 30.0, 4.0, 4.0]})  # phases: steps 0-1 at 128, 2-4 at 512
    _write(tmp_path / "results/pretrain/bert_base/checkpoints/final/model.safetensors", "w" * 2000)
    _write(tmp_path / "results/finetune/bert_base/final/mrpc/linear/lr5e-05_bs4_ep2/seed0/metrics.json", {
        "task": "mrpc", "head": "linear", "checkpoint": "results/pretrain/bert_base/checkpoints/final",
        "hyperparameters": {"lr": 5e-5, "batch_size": 4, "epochs": 2}, "step_seconds": [3.0, 2.0, 2.0, 2.0],
        "train_examples": 8, "train_features": 8, "dev_split": "validation", "seconds": 13.0,
        "device": "cpu", "peak_rss_mb": 2500.0})
    _write(tmp_path / "results/tokenizer/tokenizer.json", {"model": {"vocab": {"[PAD]": 0, "a": 1, "b": 2}}})
    result = rehearsal_report.report(full, small, {"corpus": {"mem_mb": 4000, "runtime": 60}}, root=str(tmp_path))
    rows = {(r["rule"], r["job"]): r for r in result["rows"]}
    assert result["startup_seconds"] == 2.0

    corpus = rows[("corpus", "corpus/shard-0")]
    # 20 GB of hub text over 64 shards at the measured rates (cleaning 0.05 + pysbd 4.0 CPU s per
    # MB), not the mirror's few documents scaled up (their time is mostly the job's fixed cost)
    assert corpus["full_seconds"] == pytest.approx(20e9 / 1e6 / 64 * 4.05)
    assert corpus["measured_seconds"] == 12.0 and corpus["measured_rss_mb"] == 500.0
    # the request: the profile's memory, the runtime sized by the same rates x the margin (1.5)
    assert corpus["request"] == {"mem_mb": 4000, "runtime": 32} and rehearsal_report._fits(corpus) == "time ok"

    pretrain = rows[("pretrain", "bert_base")]
    assert pretrain["measured_step_seconds"] == {"short": 1.0, "main": 4.0}
    # 900k steps at the last short step, 100k at the last long one, each x 256/4 sequences
    assert pretrain["full_seconds"] == pytest.approx((900_000 * 1.0 + 100_000 * 4.0) * 256 / 4)
    flops = {r["ablation"]: r["flops"] for r in estimate(full)["runs"]}["bert_base"]
    assert pretrain["full_gpu_seconds"] == pytest.approx(flops / (0.3 * 312e12))
    state = parameters * 16 / 2**20
    big = plan.resolve_ablation(full, "bert_base")["pretrain"]
    micro = big["batch_size"] / big["accumulation_steps"] / 2  # the rehearsal's micro-batch: 4 / 2
    fixed = state + rehearsal_report.PROCESS_MB  # the training state and the process stay, activations grow
    assert pretrain["full_memory_mb"] == pytest.approx(fixed + (3000.0 - fixed) * micro)
    assert pretrain["full_disk_gb"] == pytest.approx(2000 * 5 / 1e9)  # final + 4 Figure 5 checkpoints
    # device memory: the extrapolated peak against estimate.gpu_memory_gb (80 GB by default)
    assert pretrain["gpu_memory_mb"] == 80_000 and pretrain["full_memory_mb"] < 80_000
    assert "GPU mem ok" in rehearsal_report._fits(pretrain)
    assert "**GPU mem short**: raise pretrain.accumulation_steps" in rehearsal_report._fits({**pretrain, "gpu_memory_mb": 4000})
    # the request beside it: the rule's own, sized by the plan for the full run
    assert {k: pretrain["request"][k] for k in ("mem_mb", "runtime")} == estimate_module.pretrain_request(full, "bert_base")

    finetune = rows[("finetune", "bert_base/final/mrpc/linear/lr5e-05_bs4_ep2")]
    # the longest paper grid point: batch 16, 4 epochs, 3,668 examples; 5 restarts; the measured
    # evaluation (13 - 9 s) x 408/16 dev examples x 4/2 epochs
    restart = -(-3668 // 16) * 4 * 2.0 * 16 / 4 + 4.0 * (408 / 16) * 4 / 2
    assert finetune["full_seconds"] == pytest.approx(restart * 5)
    assert finetune["full_jobs"] == 18
    longest = plan.FinetuneRun("bert_base", "final", "mrpc", "linear", "lr2e-05_bs16_ep4")
    assert {k: finetune["request"][k] for k in ("mem_mb", "runtime")} == estimate_module.finetune_request(full, longest)

    text = rehearsal_report.markdown(result, "paper")
    assert "| pretrain | bert_base | cpu |" in text and "4000, 32, 0 | time ok |" in text
    # a mirror's small corpus learns fewer pieces than the configured vocabulary: said, not hidden
    assert "gave 3 pieces of the configured 30,000" in text


CI_TARGETS = (  # (model, step, task, head): every code path of the four presets' rehearsals
    ("size_shallow", "step-1", "mnli", "linear"),  # a pair task, two dev splits, a Figure 5 checkpoint
    ("size_shallow", "final", "squad", "bilstm"),  # 384-token windows stepped by 128, max_context; BiLSTM head
    ("size_shallow", "final", "conll2003", "features_second_to_last"),  # tagging on cached frozen layers
    ("bert_tiny", "final", "sst2", "linear"),  # a released checkpoint imported from the hub (mirror)
)


@pytest.mark.integration
def test_paper_rehearsal_of_one_run_per_code_path(tmp_path):
    """CI's rehearsal: the paper preset's real shapes (a 3/768/12 BERT, the 30k vocabulary of the
    mirror's released checkpoint, 128 -> 512 phases, accumulation, BertAdam, static shapes of
    every task) through the hub calls on a generated mirror, one job per code path, then the
    report: every job's measured step and memory, extrapolated to the full paper run."""
    import subprocess
    import sys

    from bert_ablation.data.mirrors import write_mirror
    from bert_ablation.storage import read_yaml

    ci = tmp_path / "ci.yaml"
    ci.write_text(f"rehearse: true\nhub_mirror: {tmp_path / 'mirror'}\n"
                  "checkpoints: {bert_tiny: {hub: google/bert_uncased_L-2_H-128_A-2}}\n")
    files = [str(ROOT / "presets" / "paper.yaml"), str(ci)]
    full = cfg.load(str(ROOT / "config.yaml"), files)
    write_mirror(full, str(tmp_path / "mirror"), examples=24, documents=60)
    small = rehearsal.rehearse(full)
    targets = [f"results/finetune/{m}/{step}/{task}/{head}/{plan.grid_points(small, task, head)[0].key}/seed0/metrics.json"
               for m, step, task, head in CI_TARGETS]
    work = tmp_path / "work"
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(work), "--cores", "2",
               *targets, "--configfile", *files]
    began = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.monotonic() - began
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    profile = read_yaml((ROOT / "profiles/slurm/config.yaml").read_text())
    requests = rehearsal_report.profile_requests(profile, {"pretrain": {}, "finetune": {}, "corpus": {}})
    out = rehearsal_report.write_report(full, small, requests, str(work / "results/rehearsal.md"),
                                 str(work / "results/rehearsal.json"), "paper (CI)", root=str(work))
    rows = {(r["rule"], r["job"]): r for r in out["rows"]}
    shallow = rows[("pretrain", "size_shallow")]
    assert set(shallow["measured_step_seconds"]) == {"short", "main"}  # both phases ran, at 128 and 512
    assert shallow["parameters"] > 3 * 7_000_000 and shallow["full_seconds"] > shallow["measured_seconds"]
    assert shallow["full_disk_gb"] > 0 and shallow["full_memory_mb"] > shallow["measured_rss_mb"]
    metrics = json.loads((work / "results/pretrain/size_shallow/metrics.json").read_text())
    assert len(metrics["step_seconds"]) == 5 and metrics["optimizer"]["bias_correction"] is False
    for m, step, task, head in CI_TARGETS:
        row = next(r for (rule, job), r in rows.items() if rule == "finetune" and job.startswith(f"{m}/{step}/{task}/{head}/"))
        assert row["full_jobs"] == len(plan.grid_points(full, task, head)) and row["full_seconds"] > 0
        restart = json.loads(next((work / "results/finetune" / m / step / task / head).rglob("metrics.json")).read_text())
        assert restart["train_examples"] == 8  # in batches of 4 (SQuAD: windows), 2 epochs
        assert len(restart["step_seconds"]) == -(-restart["train_features"] // 4) * 2
    assert {"corpus", "word_counts", "tokenizer", "instances", "tasks", "import_checkpoint"} <= {r["rule"] for r in out["rows"]}
    assert "| pretrain | size_shallow | cpu |" in (work / "results/rehearsal.md").read_text()

    # recorded for the README's preset table: the jobs Snakemake ran, its wall time, the measured peaks
    recorded = record_rehearsal().record("paper", work, "2 CPU cores")
    # every job the run finished, the report's rows among them (the report itself runs after)
    assert recorded["jobs"] == (result.stdout + result.stderr).count("Finished jobid") >= len(out["rows"])
    assert 0 < recorded["wall_seconds"] <= elapsed + 1
    assert recorded["rules"]["pretrain"]["measured_rss_mb"] == shallow["measured_rss_mb"]
    assert recorded["rules"]["pretrain"]["memory_mb"] == pytest.approx(shallow["full_memory_mb"])


def test_rehearsal_tables_must_exist(tmp_path):
    full = preset("released")
    assert rehearsal.rehearse({**full, "rehearse": True, "rehearsal": {**full["rehearsal"],
                               "tables": ["table5_released"]}})["rehearsal"]["tables"] == ["table5_released"]
    with pytest.raises(ConfigError, match="rehearsal.tables: unknown table or figure 'table5_relased'.*table5_released"):
        rehearsal.rehearse({**full, "rehearse": True, "rehearsal": {**full["rehearsal"], "tables": ["table5_relased"]}})


SNAKEMAKE_LOG = """Building DAG of jobs...
Job stats:
job       count
------  -------
corpus        1
all           1
total         2

[Sun Dec  6 09:34:18 2026]
rule corpus:
[Sun Dec  6 09:34:25 2026]
Finished jobid: 2 (Rule: corpus)
1 of 2 steps (50%) done
[Sun Dec  6 09:52:40 2026]
Finished jobid: 0 (Rule: all)
2 of 2 steps (100%) done
"""


def test_a_recorded_rehearsal_becomes_a_row_of_the_readme_preset_table(tmp_path):
    """benchmarks/record_rehearsal.py keeps the wall time from Snakemake's log and each rule's
    measured and extrapolated peaks; estimate's preset table prints them, measured and
    extrapolated apart."""
    module = record_rehearsal()
    folder = tmp_path / "rehearsal"
    rows = [{"rule": "pretrain", "job": "bert_base", "measured_rss_mb": 2500.0, "full_memory_mb": 14_800.0,
             "full_disk_gb": 2.8,
             "full_seconds": 9e5, "full_gpu_seconds": 254_160.0, "request": {"mem_mb": 16000, "runtime": 6353},
             "basis": "x"},
            {"rule": "corpus", "job": "corpus/shard-0", "measured_rss_mb": 370.0, "full_memory_mb": None,
             "full_seconds": 60.0, "full_gpu_seconds": None, "request": {"mem_mb": 4000, "runtime": 60}, "basis": "y"}]
    _write(folder / "results/rehearsal.json", {"rows": rows, "jobs": 2, "tokenizer": {"configured": 30000, "learnt": 982}})
    _write(folder / ".snakemake/log/2026-12-06T093418.snakemake.log", SNAKEMAKE_LOG.replace("(100%)", "(50%)"))
    with pytest.raises(ValueError, match="no Snakemake run finished every job"):
        module.record("paper", folder, "2 CPU cores")
    # resumed after a stop: both runs count (the second finished the last job in 9 s)
    resumed = "[Sun Dec  6 10:00:00 2026]\nFinished jobid: 0 (Rule: all)\n[Sun Dec  6 10:00:09 2026]\n1 of 1 steps (100%) done\n"
    _write(folder / ".snakemake/log/2026-12-06T100000.snakemake.log", resumed)
    assert module.record("paper", folder, "2 CPU cores")["wall_seconds"] == 18 * 60 + 22 + 9
    _write(folder / ".snakemake/log/2026-12-06T093418.snakemake.log", SNAKEMAKE_LOG)
    # a later run that only rebuilt the report is not the rehearsal's time
    recorded = module.record("paper", folder, "2 CPU cores", note="alone")
    assert recorded["wall_seconds"] == 18 * 60 + 22 and recorded["jobs"] == 2 and recorded["snakemake_runs"] == 1
    assert recorded["rules"]["pretrain"] | {"request": None} == {
        "jobs": 1, "seconds": 254_160.0, "memory_mb": 14_800.0, "request": None, "fits": "time ok",
        "measured_rss_mb": 2500.0, "disk_gb": 2.8}
    assert recorded["rules"]["corpus"]["measured_rss_mb"] == 370.0

    root = tmp_path / "repo"
    (root / "presets").mkdir(parents=True)
    (root / "config.yaml").write_text((ROOT / "config.yaml").read_text())
    assert preset_table.rehearsals_table(str(root)) == ""  # nothing recorded: no table
    _write(root / "benchmarks/rehearsals/paper.json", recorded)
    table = preset_table.rehearsals_table(str(root))
    assert "| `paper` | 2 jobs, 18 min (" in table and "(alone) | 2 CPU cores | 2.5 GB, pretrain " in table
    assert "| 60.0 s (corpus), 0.4 GB | 70.6 h, 14.8 GB, 3 GB disk in all | none | pretrain: time ok |" in table
    with pytest.raises(FileNotFoundError, match="did not finish"):
        module.record("paper", tmp_path / "nothing", "2 CPU cores")
