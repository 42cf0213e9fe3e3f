"""Fine-tuning on a RoFormer checkpoint: per-epoch dev curves, collapse detection, the curve figure."""
import json
import logging

import pytest
import torch

from bert_ablation import config as cfg
from bert_ablation import plan
from bert_ablation.data.task_sources import build_task
from bert_ablation.evaluation.plots import plot_finetune_curves
from bert_ablation.models.modeling import pretraining_model
from bert_ablation.storage import write_json
from bert_ablation.training.finetune import finetune

MODEL = {"architecture": "roformer", "layers": 1, "hidden": 16, "heads": 2, "intermediate": 32, "dropout": 0.0,
         "max_position_embeddings": 128}


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("curves")
    torch.manual_seed(0)
    pretraining_model(MODEL, len(tokenizer), tokenizer.pad_token_id, causal=False).save_pretrained(root / "ck")
    tokenizer.save_pretrained(root / "ck")
    write_json(root / "ck" / "ablation.json", {"name": "tiny_roformer", "step": 0, "spec_hash": "0"})
    config = cfg.validate({"tasks": {"sst2": {"n_train": 48, "n_dev": 24}},
                           # No collapse retries here: these tests count epochs and pin collapses as they
                           # happen (test_health pins the retries).
                           "finetune": {"precision": "fp32", "restarts": 2, "collapse_retry": {"max_retries": 0}}})
    build_task("sst2", config["tasks"]["sst2"], config["world"], str(root / "task"))
    return root, config


def run(root, config, lr, epochs, name):
    config = {**config, "finetune": {**config["finetune"], "grid": {"lr": [lr], "batch_size": [8], "epochs": [epochs]}}}
    key = plan.grid_points(config, "sst2")[0].key
    settings = plan.finetune_settings(config, "sst2", "linear", key)
    outputs = [str(root / name / f"seed{k}" / "metrics.json") for k in range(2)]
    finetune(str(root / "ck"), str(root / "task"), "sst2", "linear", settings, outputs, threads=1, device="cpu")
    return outputs, [json.loads(open(p).read()) for p in outputs]


def test_each_restart_records_its_dev_score_after_every_epoch(setup):
    root, config = setup
    _, runs = run(root, config, 1e-3, 3, "three")
    for metrics in runs:
        assert [p["epoch"] for p in metrics["dev_curve"]] == [1, 2, 3]
        assert metrics["dev_curve"][-1] == {"epoch": 3, **metrics["dev"]}
        assert metrics["optimizer"]["bias_correction"] is True
    # the same seeds give the same curves, number for number
    _, again = run(root, config, 1e-3, 3, "three_again")
    assert [m["dev_curve"] for m in again] == [m["dev_curve"] for m in runs]


def test_a_collapsed_restart_is_named_in_metrics_and_log(setup, caplog):
    root, config = setup
    with caplog.at_level(logging.WARNING, logger="bert_ablation.training.finetune"):
        _, runs = run(root, config, 3.0, 1, "collapsed")  # lr 3: the classifier diverges to one class
    collapsed = [m for m in runs if m["collapsed_to"]]
    assert collapsed, [m["dev"] for m in runs]
    for metrics in collapsed:
        assert metrics["collapsed_to"] in ("negative", "positive")
    assert "collapsed: it predicts" in caplog.text
    import datasets

    dev = datasets.load_from_disk(str(root / "task"))["validation"]["label"]
    for metrics in collapsed:  # a constant classifier scores exactly the share of its class
        share = 100 * dev.count(("negative", "positive").index(metrics["collapsed_to"])) / len(dev)
        assert metrics["dev"]["accuracy"] == pytest.approx(share)


def test_curve_figure_draws_every_restart(setup):
    root, config = setup
    outputs, runs = run(root, config, 1e-3, 2, "figure")
    png, pdf = root / "curves.png", root / "curves.pdf"
    drawn = plot_finetune_curves(outputs, str(png), str(pdf))
    assert sorted(drawn) == [0, 1]
    assert [len(v) for v in drawn.values()] == [2, 2]
    assert drawn[0] == [p["accuracy"] for p in runs[0]["dev_curve"]]
    assert png.stat().st_size > 5000 and pdf.read_bytes()[:4] == b"%PDF"


def test_restarts_record_their_inputs_by_content(setup):
    from bert_ablation.storage import tree_digest

    root, config = setup
    _, runs = run(root, config, 1e-3, 1, "digests")
    assert runs[0]["inputs"] == {"checkpoint": tree_digest(root / "ck"), "task_data": tree_digest(root / "task")}
    assert len(runs[0]["inputs"]["checkpoint"]) == 64 and runs[0]["inputs"] == runs[1]["inputs"]


def test_an_interrupted_job_resumes_to_the_uninterrupted_result(setup):
    """Killed after 4 epochs (restart 0 done, restart 1 after its first epoch): the rerun reuses
    restart 0 and continues restart 1 from its saved epoch, to the same numbers."""
    root, config = setup
    straight, _ = run(root, config, 3e-4, 3, "straight")
    config = {**config, "finetune": {**config["finetune"], "grid": {"lr": [3e-4], "batch_size": [8], "epochs": [3]}}}
    settings = plan.finetune_settings(config, "sst2", "linear", plan.grid_points(config, "sst2")[0].key)
    outputs = [str(root / "killed" / f"seed{k}" / "metrics.json") for k in range(2)]
    args = (str(root / "ck"), str(root / "task"), "sst2", "linear", settings, outputs)
    state = root / "state"
    assert finetune(*args, threads=1, device="cpu", state_root=str(state), stop_after_epochs=4) is None
    (saved,) = list(state.glob("*/restart1.pt"))  # restart 1's state after its first epoch
    assert list(state.glob("*/restart0.json"))  # restart 0 finished
    resumed = finetune(*args, threads=1, device="cpu", state_root=str(state))
    expected = [json.loads(open(p).read()) for p in straight]
    for got, want in zip(resumed, expected):
        assert got["dev_curve"] == want["dev_curve"] and got["dev"] == want["dev"]
    assert not saved.exists() and not list(state.iterdir())  # a completed job leaves no state behind


def test_one_job_fine_tunes_each_pretraining_seeds_checkpoint_with_its_share_of_the_restarts(setup, tokenizer):
    """Two checkpoints (pretraining seeds), 4 outputs: seed 0 takes restarts 0-1, seed 1 restarts 2-3,
    each from its own checkpoint, restart k's seeds from k; the first seed's restarts are exactly a
    one-checkpoint job's, and a checkpoint of another config is refused before any training."""
    root, config = setup
    torch.manual_seed(1)
    pretraining_model(MODEL, len(tokenizer), tokenizer.pad_token_id, causal=False).save_pretrained(root / "ck1")
    tokenizer.save_pretrained(root / "ck1")
    write_json(root / "ck1" / "ablation.json", {"name": "tiny_roformer.seed1", "step": 0, "spec_hash": "1"})
    config = {**config, "finetune": {**config["finetune"], "grid": {"lr": [1e-3], "batch_size": [8], "epochs": [1]}}}
    settings = plan.finetune_settings(config, "sst2", "linear", plan.grid_points(config, "sst2")[0].key)
    outputs = [str(root / "seeds" / f"seed{k}" / "metrics.json") for k in range(4)]
    results = finetune([str(root / "ck"), str(root / "ck1")], str(root / "task"), "sst2", "linear", settings, outputs,
                       threads=1, device="cpu", expected_spec_hash=["0", "1"])
    assert [m["ablation"] for m in results] == ["tiny_roformer"] * 2 + ["tiny_roformer.seed1"] * 2
    assert [m["restart"] for m in results] == [0, 1, 2, 3] and len({m["init_seed"] for m in results}) == 4
    single = [str(root / "single" / f"seed{k}" / "metrics.json") for k in range(2)]
    alone = finetune(str(root / "ck"), str(root / "task"), "sst2", "linear", settings, single, threads=1, device="cpu")
    assert [m["dev_curve"] for m in alone] == [m["dev_curve"] for m in results[:2]]
    refused = [str(root / "refused" / f"seed{k}" / "metrics.json") for k in range(4)]
    with pytest.raises(Exception, match="ck1 was pretrained with another config"):
        finetune([str(root / "ck"), str(root / "ck1")], str(root / "task"), "sst2", "linear", settings, refused,
                 threads=1, device="cpu", expected_spec_hash=["0", "x"])
    assert not (root / "refused").exists()  # seed 0 was not trained first
    with pytest.raises(ValueError, match="3 outputs cannot be split over 2 checkpoints"):
        finetune([str(root / "ck"), str(root / "ck1")], str(root / "task"), "sst2", "linear", settings, outputs[:3])
