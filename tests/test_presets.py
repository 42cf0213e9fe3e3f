"""Every preset validates and plans its whole DAG in seconds (no data is touched by a dry run)."""
import pytest

from bert_ablation import config as cfg
from bert_ablation import plan
from tests.test_workflow import ROOT, planned_jobs, snakemake


@pytest.mark.parametrize("preset, finetune_jobs, restarts", [("small", 125, 3), ("base", 239, 5), ("paper", 1084, 5)])
def test_preset_plans_the_full_dag(tmp_path, preset, finetune_jobs, restarts):
    path = ROOT / "presets" / f"{preset}.yaml"
    config = cfg.load(str(ROOT / "config.yaml"), [str(path)])
    assert config["finetune"]["restarts"] == restarts
    assert {t["source"] for t in config["tasks"].values()} == {"hub"} and config["corpus"]["source"] == "hf"
    # no task keeps config.yaml's learning rates for tiny models
    assert all(p.lr <= 1e-4 for task in config["tasks"] for p in plan.grid_points(config, task))
    jobs = planned_jobs(snakemake(tmp_path, "-n", configfiles=(path,)))
    assert jobs["pretrain"] == 14 and jobs["finetune"] == finetune_jobs
    assert jobs["table"] == 5 and jobs["claims"] == 1
    # per corpus shard: two packings, at 128 and 512 for the paper; word counts per shard, one vocabulary
    shards = config["corpus"]["shards"]
    assert shards > 1 and jobs["corpus"] == jobs["word_counts"] == shards and jobs["tokenizer"] == 1
    assert jobs["instances"] == (4 if preset == "paper" else 2) * shards


def test_paper_preset_has_the_papers_hyperparameters():
    config = cfg.load(str(ROOT / "config.yaml"), [str(ROOT / "presets" / "paper.yaml")])
    base = plan.resolve_ablation(config, "bert_base")
    assert (base["model"]["layers"], base["model"]["hidden"], base["model"]["heads"]) == (12, 768, 12)
    assert base["pretrain"]["steps"] == 1_000_000 and base["pretrain"]["batch_size"] == 256
    assert base["pretrain"]["lr"] == 1e-4 and base["pretrain"]["warmup_steps"] == 10_000
    assert (base["pretrain"]["short_seq_steps"], base["pretrain"]["short_seq_length"]) == (900_000, 128)
    assert config["instances"]["max_seq_length"] == 512
    assert len(plan.grid_points(config, "mnli")) == 18
    wide_deep = plan.resolve_ablation(config, "size_wide_deep")["model"]
    assert (wide_deep["layers"], wide_deep["hidden"], wide_deep["heads"]) == (24, 1024, 16)


def test_families_preset_plans_table5_under_both_encoder_families(tmp_path):
    """The side-by-side table reuses the default (rotary) runs and adds the BERT-encoder ones."""
    path = ROOT / "presets" / "families.yaml"
    config = cfg.load(str(ROOT / "config.yaml"), [str(path)])
    rows = config["tables"]["table5_families"]["rows"]
    families = {plan.resolve_ablation(config, r["ablation"])["model"]["architecture"] for r in rows.values()}
    assert families == {"bert", "roformer"} and len(rows) == 10
    assert plan.resolve_ablation(config, "bert_base")["model"]["architecture"] == "roformer"
    assert plan.resolve_ablation(config, "bert_base_abs")["model"]["architecture"] == "bert"
    jobs = planned_jobs(snakemake(tmp_path, "-n", "table5_families", configfiles=(path,)))
    assert jobs["pretrain"] == 8  # 4 ablations x 2 families
    # every cell is its own run: 10 rows x 5 columns, each at every point of the task's grid
    assert jobs["finetune"] == sum(len(plan.grid_points(config, t)) for t in ("mnli", "qnli", "mrpc", "sst2", "squad")) * 10


def test_long_pretraining_preset_changes_only_the_pretraining_length(tmp_path):
    """5x the steps for every pretraining run, warmup and Figure 5's checkpoints scaled with them;
    everything else (the 8-layer row's own rate, No pretraining's 0 steps) is config.yaml's."""
    path = ROOT / "presets" / "long_pretraining.yaml"
    default = cfg.load(str(ROOT / "config.yaml"), [])
    config = cfg.load(str(ROOT / "config.yaml"), [str(path)])
    before, after = default["pretrain"], config["pretrain"]
    assert after["steps"] == 5 * before["steps"] and after["warmup_steps"] == 5 * before["warmup_steps"]
    assert after["save_steps"] == [5 * s for s in before["save_steps"]]
    for ablation in config["ablations"]:
        long, short = plan.resolve_ablation(config, ablation), plan.resolve_ablation(default, ablation)
        assert long["pretrain"]["lr"] == short["pretrain"]["lr"]
        assert long["pretrain"]["steps"] == (0 if ablation == "no_pretraining" else 3500)
        assert {k: v for k, v in long.items() if k != "pretrain"} == {k: v for k, v in short.items() if k != "pretrain"}
    # Figure 5's columns: the scaled checkpoints, then the final model
    def figure_steps(c):
        return sorted({int(cell.column) for cell in plan.table_cells(c, "figure5")})
    assert figure_steps(config) == [5 * s for s in figure_steps(default)] == [700, 1400, 2100, 3500]
    config["pretrain"] = default["pretrain"]
    assert config == default
    jobs = planned_jobs(snakemake(tmp_path, "-n", configfiles=(path,)))
    assert jobs["pretrain"] == 14 and jobs["finetune"] == 68 and jobs["claims"] == 1
