"""The whole DAG, end to end, on the micro config: outputs, caching and rerun scope."""
import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bert_ablation.storage import read_json

ROOT = Path(__file__).resolve().parents[1]
MICRO = ROOT / "tests" / "micro.yaml"

pytestmark = pytest.mark.integration


def snakemake(workdir: Path, *args: str, configfiles=(MICRO,)) -> str:
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
               "--cores", "2", *args, "--configfile", *map(str, configfiles)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def planned_jobs(output: str) -> dict[str, int]:
    """Job counts from a dry run's 'Job stats' table ({} when there is nothing to do)."""
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("micro")
    snakemake(workdir)
    return workdir


def test_table5_has_every_cell_from_every_restart(run):
    table = pd.read_csv(run / "results/tables/table5.csv")
    assert len(table) == 5 * 5
    assert list(dict.fromkeys(table["row"])) == ["BERT-Base", "No NSP", "LTR & No NSP", "+ BiLSTM", "No pretraining"]
    assert set(table["column"]) == {"MNLI-m (Acc)", "QNLI (Acc)", "MRPC (Acc)", "SST-2 (Acc)", "SQuAD (F1)"}
    assert (table["n"] == 2).all()
    assert table["mean"].between(0, 100).all() and table["sd"].map(math.isfinite).all()
    assert table["best"].ge(table["mean"]).all()
    paper = table.set_index(["row", "column"])["paper"]
    assert paper[("BERT-Base", "MNLI-m (Acc)")] == 84.4 and paper[("+ BiLSTM", "SQuAD (F1)")] == 84.9
    markdown = (run / "results/tables/table5.md").read_text()
    assert "Ablation over the pre-training tasks" in markdown and markdown.count("\n| ") == 6
    assert (run / "results/figures/table5.png").stat().st_size > 10_000
    assert (run / "results/tables/table5.tex").read_text().count(r"\\") >= 6


def test_one_job_fine_tunes_every_pretraining_seed_with_its_own_restart_seeds(run):
    import json

    restarts = sorted((run / "results/finetune/ltr/final/squad/bilstm").glob("*/seed*/metrics.json"))
    assert len(restarts) == 2  # 2 pretraining seeds x finetune.restarts 1, one job
    a, b = (json.loads(p.read_text()) for p in restarts)
    assert (a["ablation"], b["ablation"]) == ("ltr", "ltr.seed1") and a["pretrain_spec_hash"] != b["pretrain_spec_hash"]
    assert a["init_seed"] != b["init_seed"] and a["data_seed"] != b["data_seed"] and a["init_seed"] != a["data_seed"]
    assert set(a["dev"]) == {"exact_match", "f1"}


def test_checkpoints_and_pretraining_metrics(run):
    from transformers import AutoModel

    from bert_ablation.storage import tree_digest

    for ablation, kind in (("bert_base", "masked-LM"), ("ltr", "next-token")):
        metrics = pd.read_json(run / f"results/pretrain/{ablation}/metrics.json", typ="series")
        assert metrics["steps"] == 20 and metrics["heldout_perplexity_kind"] == kind
        assert 1 < metrics["heldout_perplexity"] < 512
        # what it trained on, by content: the corpus folder, the vocabulary, the instances
        assert metrics["inputs"]["corpus"] == tree_digest(run / "results/corpus/shard-0")
        assert set(metrics["inputs"]) == {"corpus", "tokenizer", "train_instances", "heldout_instances"}
    model = AutoModel.from_pretrained(run / "results/pretrain/ltr/checkpoints/final")
    assert model.config.model_type == "roformer"  # the default recipe's encoder family
    assert model.config.is_decoder and model.config.num_hidden_layers == 4
    assert AutoModel.from_pretrained(run / "results/pretrain/ltr/checkpoints/step-10").config.is_decoder
    log = pd.read_csv(run / "results/pretrain/bert_base/log.csv")
    assert list(log["step"]) == [5, 10, 15, 20] and log["loss"].map(math.isfinite).all()


def test_a_complete_run_has_nothing_left_to_do(run):
    assert planned_jobs(snakemake(run, "-n")) == {}


def test_the_jobs_ran_warm_and_a_cold_job_computes_the_same_weights(run, tmp_path):
    """Warm start (bert_ablation.warm): the training jobs ran in forks of the run's warm server,
    and the same job in its own process (warm_start: false) writes byte-identical weights."""
    served = (run / "logs/warm_server.log").read_text()
    finetune_jobs = len(list((run / "logs/finetune").rglob("*.benchmark.tsv")))
    assert finetune_jobs and served.count(".finetune.py") == finetune_jobs
    assert served.count(".pretrain.py") >= 1
    snakemake(tmp_path, "results/pretrain/bert_base/metrics.json", "--config", "warm_start=False")
    assert not (tmp_path / "logs/warm_server.log").exists()
    for name in ("final", "step-10"):
        weights = f"results/pretrain/bert_base/checkpoints/{name}/model.safetensors"
        assert (tmp_path / weights).read_bytes() == (run / weights).read_bytes()


def test_changing_one_task_hyperparameter_reruns_only_its_finetuning(run, tmp_path):
    change = tmp_path / "change.yaml"
    change.write_text("finetune: {warmup_ratio: 0.2}\n")  # params of every finetune job
    jobs = planned_jobs(snakemake(run, "-n", configfiles=(MICRO, change)))
    assert jobs == {"finetune": 64, "table": 5, "claims": 1, "all": 1}
    change.write_text("tasks: {sst2: {grid: {lr: [0.0002]}}}\n")  # a new grid point, one task
    jobs = planned_jobs(snakemake(run, "-n", configfiles=(MICRO, change)))
    assert jobs == {"finetune": 10, "table": 2, "claims": 1, "all": 1}  # Tables 5 and 6 show SST-2


def test_changing_the_masking_of_one_ablation_reruns_it_and_its_descendants_only(run, tmp_path):
    change = tmp_path / "change.yaml"
    change.write_text("ablations: {bert_base: {objective: mlm_nsp, masking: {mask: 1.0, same: 0.0, random: 0.0}}}\n")
    jobs = planned_jobs(snakemake(run, "-n", configfiles=(MICRO, change)))
    # bert_base feeds every table: 5 tasks (Tables 5, 6, 8), 7 NER heads (Tables 7, 8), MNLI at step 10 (Figure 5)
    assert jobs == {"pretrain": 2, "finetune": 13, "table": 5, "loss_curves": 1, "claims": 1, "all": 1}  # 2 seeds


def test_shared_runs_are_planned_once(tmp_path):
    jobs = planned_jobs(snakemake(tmp_path, "-n"))
    # one per ablation and pretraining seed / distinct fine-tuning run (each fine-tunes every seed)
    assert jobs["pretrain"] == 14 * 2 and jobs["finetune"] == 64
    assert jobs["instances"] == 2 and jobs["tasks"] == 6 and jobs["table"] == 5


def test_a_short_sequence_phase_adds_instances_at_that_length(tmp_path):
    change = tmp_path / "change.yaml"
    change.write_text("pretrain: {short_seq_steps: 15, short_seq_length: 32}\n")
    output = snakemake(tmp_path, "-n", "-p", "results/pretrain/ltr/metrics.json", configfiles=(MICRO, change))
    assert planned_jobs(output)["instances"] == 2  # contiguous at lengths 64 and 32
    assert "results/instances/contiguous/len32/shard-0" in output


def test_every_table_figure_and_the_claims_are_written(run):
    shapes = {"table6": (6, 4), "table7": (7, 2), "table8": (6, 3), "figure5": (2, 2)}
    for name, (n_rows, n_columns) in shapes.items():
        table = pd.read_csv(run / f"results/tables/{name}.csv")
        assert (table["row"].nunique(), table["column"].nunique()) == (n_rows, n_columns), name
        assert (run / f"results/figures/{name}.pdf").read_bytes()[:4] == b"%PDF"
    table6 = pd.read_csv(run / "results/tables/table6.csv").set_index(["row", "column"])
    assert table6.loc[("3/768/12", "LM (ppl)"), "n"] == 2 and table6.loc[("3/768/12", "LM (ppl)"), "paper"] == 5.84
    assert table6.loc[("24/1024/16", "MNLI-m"), "layers"] == 8
    table7 = pd.read_csv(run / "results/tables/table7.csv")
    assert set(table7["split"]) == {"validation", "test"} and table7["mean"].between(0, 100).all()
    table8 = pd.read_csv(run / "results/tables/table8.csv").set_index(["row", "column"])
    assert table8.loc[("0/0/100", "NER Feature-based"), "head"] == "features_concat_last_four"
    figure5 = pd.read_csv(run / "results/tables/figure5.csv")
    assert list(figure5["column"].drop_duplicates()) == [10, 20]
    claims = pd.read_csv(run / "results/claims.csv")
    assert len(claims) >= 20 and set(claims["verdict"]) <= {"reproduced", "contradicted", "inconclusive",
                                                             "not testable", "not evaluated"}
    # 20 micro steps learn nothing: a claim is judged unless it compares a run the health check
    # marked not learnt (evaluation/health.py), and then it says so
    health = {a: read_json(run / f"results/pretrain/{a}/metrics.json")["health"]["status"]
              for a in ("bert_base", "no_nsp", "ltr", "no_pretraining")}
    assert health["no_pretraining"] == "exempt" and set(health.values()) <= {"learnt", "plateau", "collapsed", "exempt"}
    excluded = claims[claims["verdict"] == "not testable"]
    assert excluded["reason"].str.startswith("not testable").all() and len(excluded) > 0
    # two pretraining seeds per ablation: every pretraining cell holds one value per seed, and every
    # verdict that was tested resampled them (paired: seed k of every ablation shares its seeds)
    assert (run / "results/pretrain/bert_base.seed1/metrics.json").exists()
    assert table6.loc[("3/768/12", "LM (ppl)"), "seeds"] == 2
    tested = claims[claims["tests"] > 0]
    assert all("paired seeds" in str(d) for d in tested["seeds"]) and (tested["floor"] >= 0.25).all()
    table5 = pd.read_csv(run / "results/tables/table5.csv", keep_default_na=False)
    assert {"pretrain_health", "not_learnt", "all_collapsed", "retried"} <= set(table5.columns)
    assert "of 28 claims" in (run / "results/claims.md").read_text()
    assert (run / "results/figures/pretraining_loss.png").stat().st_size > 10_000


def test_the_report_holds_the_tables_figures_and_claims(run):
    snakemake(run, "--report", "report.html")
    html = (run / "report.html").read_text()
    for name in ("table5.csv", "table8.png", "figure5.png", "pretraining_loss.png", "claims.csv"):
        assert name in html, name


def test_finetune_probe_reruns_a_finished_runs_checkpoint_beside_the_hf_reference(run):
    """benchmarks/finetune_probe.py (docs/recipe.md): one restart per setting, scores in range."""
    import json

    command = [sys.executable, str(ROOT / "benchmarks" / "finetune_probe.py"), "--results", str(run / "results"),
               "--config", str(ROOT / "config.yaml"), str(MICRO), "--ablation", "bert_base", "--task", "sst2",
               "--epochs", "2", "--group-by-length", "--reference"]
    probe = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr[-3000:]
    row = json.loads(next(line for line in probe.stdout.splitlines() if line.startswith("{")))
    assert row["group_by_length"] is True and row["metric"] == "accuracy" and row["lr"] == 1e-3
    assert len(row["dev"]) == len(row["reference_dev"]) == 2
    assert all(0 <= value <= 100 for value in (*row["dev"], *row["reference_dev"], row["train"]))
    assert "| bert_base | sst2 | 0.001 | 2 | True | 0 |" in probe.stdout
    # --checkpoint: a save step of the run (micro: step 10 of 20); a name the run did not save is
    # refused with the ones it did.
    at_step = command[:command.index("--epochs")] + ["--epochs", "1", "--checkpoint", "step-10"]
    probe = subprocess.run(at_step, capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr[-3000:]
    row = json.loads(next(line for line in probe.stdout.splitlines() if line.startswith("{")))
    assert row["checkpoint"] == "step-10" and len(row["dev"]) == 1
    missing = subprocess.run(at_step[:-1] + ["step-11"], capture_output=True, text=True, timeout=300)
    assert missing.returncode != 0 and "this run saved: final, step-10" in missing.stderr
