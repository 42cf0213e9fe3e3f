"""Pretraining health (evaluation/health.py) and fine-tuning's collapse retries.

The classifier on crafted numbers, then the real pretrain code on a micro corpus a 1-layer model
learns in 40 steps (each sentence runs on through a fixed cycle of 16 words): a learnt run is
quiet; a rate of 1e-7 stays on the plateau, a rate of 20 diverges, each with its WARNING block.
"""
import dataclasses
import json
import logging
import math
import random

import pytest
import torch

from bert_ablation import config as cfg
from bert_ablation import plan
from bert_ablation.data.corpus import build_corpus
from bert_ablation.data.instances import build_instances
from bert_ablation.data.tokenizer import build_tokenizer, count_words
from bert_ablation.evaluation import health
from bert_ablation.evaluation.tables import load_runs
from bert_ablation.training.pretrain import pretrain
from bert_ablation.training.tasks import TASK_KINDS

LEARNT = {"steps": 100, "heldout_perplexity": 6.3, "unigram_perplexity": 160.0, "heldout_lm_accuracy": 0.59,
          "unigram_accuracy": 0.066, "last_layer_cosine": 0.15, "final_train_loss": 2.5,
          "heldout_perplexity_kind": "masked-LM"}
DESCENT = [(10, 6.0), (20, 4.0), (30, 3.0), (40, 2.5)]


def test_a_learnt_run_is_quiet_and_records_the_numbers_and_thresholds():
    record = health.classify(LEARNT, DESCENT)
    assert record["status"] == "learnt" and record["problems"] == [] and record["spikes"] == []
    assert record["perplexity_ratio"] == pytest.approx(6.3 / 160)
    assert record["thresholds"] == {"plateau_perplexity_ratio": 0.5, "collapse_cosine": 0.6, "spike_nats": 1.0}
    assert health.not_learnt(record) is None


def test_issue_25s_run_is_on_the_plateau():
    """Held-out perplexity 1026 against the unigram's 1065 (issue 25's own corpus)."""
    record = health.classify({**LEARNT, "heldout_perplexity": 1026.0, "unigram_perplexity": 1065.0}, DESCENT)
    assert record["status"] == "plateau" and record["perplexity_ratio"] == pytest.approx(0.963, abs=1e-3)
    assert "1026.0 is 0.96 x the unigram baseline's 1065.0" in health.not_learnt(record)
    # just below half the unigram's perplexity is learnt
    assert health.classify({**LEARNT, "heldout_perplexity": 79.0}, DESCENT)["status"] == "learnt"


def test_a_plateau_beside_a_solved_nsp_names_the_shortcut():
    """The two-register corpus (docs/own_corpus.md): masked LM at 0.80 x the unigram, NSP at 87%.
    A plateau with NSP near chance (53%) gets the generic advice only."""
    plateau = {**LEARNT, "heldout_perplexity": 528.1, "unigram_perplexity": 658.1}
    shortcut = health.classify({**plateau, "heldout_nsp_accuracy": 0.867}, DESCENT)["problems"][0]["fix"]
    assert shortcut.startswith("NSP is solved (86.7%) while the masked LM is not") and "nsp_negatives: sentence" in shortcut
    assert "pretrain.lr" in shortcut  # the generic advice follows
    generic = health.classify({**plateau, "heldout_nsp_accuracy": 0.53}, DESCENT)["problems"][0]["fix"]
    assert generic == health.FIXES["plateau"]
    assert health.classify({**LEARNT, "heldout_nsp_accuracy": 0.95}, DESCENT)["problems"] == []


def test_divergence_nan_and_a_run_ending_in_a_spike():
    assert health.classify({**LEARNT, "heldout_perplexity": math.nan}, DESCENT)["status"] == "diverged"
    assert health.classify(LEARNT, [*DESCENT, (50, math.inf)])["status"] == "diverged"
    ended = health.classify(LEARNT, [*DESCENT, (50, 3.6)])  # 1.1 nats above the lowest, 2.5, at the end
    assert ended["status"] == "diverged" and ended["spikes"] == [{"step": 50, "loss": 3.6, "lowest_before": 2.5}]
    recovered = health.classify(LEARNT, [(10, 6.0), (20, 3.0), (30, 4.5), (40, 2.5)])
    assert recovered["status"] == "learnt" and [s["step"] for s in recovered["spikes"]] == [30]


def test_collapse_and_precedence():
    collapsed = health.classify({**LEARNT, "last_layer_cosine": 0.72}, DESCENT)  # docs/benchmark.md's 100/0/0
    assert collapsed["status"] == "collapsed" and "cosine" in collapsed["problems"][0]["detail"]
    both = health.classify({**LEARNT, "heldout_perplexity": 163.0, "last_layer_cosine": 1.0}, DESCENT)
    assert both["status"] == "plateau" and [p["status"] for p in both["problems"]] == ["plateau", "collapsed"]
    assert all(p["fix"] for p in both["problems"])


def test_no_pretraining_is_exempt():
    record = health.classify({**LEARNT, "steps": 0, "heldout_perplexity": 512.0, "last_layer_cosine": 0.9}, [])
    assert record["status"] == "exempt" and health.not_learnt(record) is None


# ----------------------------------------------------------------------------- real runs

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split()


@pytest.fixture(scope="module")
def cyclic(tmp_path_factory):
    root = tmp_path_factory.mktemp("health")
    rng = random.Random(0)
    docs = ["\n".join(" ".join(WORDS[(k + i) % 16] for i in range(rng.randint(6, 12))).capitalize() + "."
                      for k in (rng.randrange(16) for _ in range(rng.randint(3, 6)))) for _ in range(120)]
    (root / "corpus.txt").write_text("\n\n".join(docs) + "\n")
    config = cfg.validate({
        "corpus": {"source": "text", "text": {"paths": [str(root / "corpus.txt")]}},
        "tokenizer": {"vocab_size": 64, "min_frequency": 1}, "instances": {"max_seq_length": 48},
        "model": {"architecture": "roformer", "layers": 1, "hidden": 32, "heads": 2, "intermediate": 64,
                  "dropout": 0.0, "max_position_embeddings": 48},
        "pretrain": {"steps": 40, "batch_size": 8, "warmup_steps": 10, "log_every": 10, "eval_batches": 2,
                     "lr": 0.01},
        "tables": {}})
    build_corpus(config, root / "corpus")
    count_words(str(root / "corpus"), str(root / "counts.tsv"), lowercase=True)
    build_tokenizer([str(root / "counts.tsv")], str(root / "tokenizer"), config["tokenizer"])
    build_instances(str(root / "corpus"), str(root / "tokenizer"), "contiguous", config["instances"],
                    str(root / "contiguous"))
    return config, root


def run(cyclic, out, **pretrain_settings):
    config, root = cyclic
    config = cfg.deep_merge(config, {"pretrain": pretrain_settings})
    spec = plan.resolve_ablation(config, "ltr")
    return pretrain(spec, str(root / "contiguous"), str(root / "tokenizer"), str(out / "checkpoints"),
                    str(out / "metrics.json"), str(out / "log.csv"), str(out / "state"), threads=1, device="cpu")


def test_a_learnt_run_beats_its_unigram_baseline_quietly(cyclic, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="bert_ablation.training.pretrain"):
        metrics = run(cyclic, tmp_path)
    assert metrics["health"]["status"] == "learnt", metrics["health"]
    # 16 words in a cycle: the unigram baseline guesses one of ~20 pieces, the model the next one
    assert 10 < metrics["unigram_perplexity"] < 64 and metrics["heldout_perplexity"] < 0.2 * metrics["unigram_perplexity"]
    assert 0 < metrics["unigram_accuracy"] < 0.2 < metrics["heldout_lm_accuracy"]
    assert metrics["last_layer_cosine"] < 0.6
    assert "WARNING" not in caplog.text
    assert json.loads((tmp_path / "metrics.json").read_text())["health"] == metrics["health"]


def test_a_run_that_does_not_move_is_on_the_plateau_and_warned(cyclic, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="bert_ablation.training.pretrain"):
        metrics = run(cyclic, tmp_path, lr=1e-7, steps=20)
    record = metrics["health"]
    assert record["status"] == "plateau" and record["perplexity_ratio"] > 0.5
    assert record["unigram_perplexity"] == metrics["unigram_perplexity"]
    assert "WARNING: pretraining run 'ltr' did not learn (PLATEAU)" in caplog.text and "likely fix" in caplog.text


def test_a_huge_rate_diverges(cyclic, tmp_path):
    record = run(cyclic, tmp_path, lr=20.0)["health"]
    assert record["status"] == "diverged", record
    assert "diverged" in health.not_learnt(record)


def test_fail_mode_stops_the_job_and_publishes_nothing(cyclic, tmp_path):
    with pytest.raises(health.PretrainingHealthError, match=r"(?s)PLATEAU.*likely fix.*stops here"):
        run(cyclic, tmp_path, lr=1e-7, steps=20, health="fail")
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "checkpoints").exists()
    assert run(cyclic, tmp_path / "zero", steps=0, warmup_steps=0, health="fail")["health"]["status"] == "exempt"


# ----------------------------------------------------------------------------- collapse retries

@pytest.fixture(scope="module")
def sst2(tmp_path_factory, tokenizer):
    from bert_ablation.data.task_sources import build_task
    from bert_ablation.models.modeling import pretraining_model
    from bert_ablation.storage import write_json

    root = tmp_path_factory.mktemp("retry")
    model = {"architecture": "roformer", "layers": 1, "hidden": 16, "heads": 2, "intermediate": 32, "dropout": 0.0,
             "max_position_embeddings": 128}
    torch.manual_seed(0)
    pretraining_model(model, len(tokenizer), tokenizer.pad_token_id, causal=False).save_pretrained(root / "ck")
    tokenizer.save_pretrained(root / "ck")
    write_json(root / "ck" / "ablation.json", {"name": "tiny", "step": 0, "spec_hash": "0"})
    config = cfg.validate({"tasks": {"sst2": {"n_train": 32, "n_dev": 16}},
                           "finetune": {"precision": "fp32", "restarts": 1,
                                        "grid": {"lr": [3e-3], "batch_size": [8], "epochs": [1]}}})
    build_task("sst2", config["tasks"]["sst2"], config["world"], str(root / "task"))
    return root, config


def collapse_as(monkeypatch, constant_prediction):
    """Classification's collapse check replaced by ``constant_prediction(spec, outputs)``."""
    kind = TASK_KINDS["classification"]
    monkeypatch.setitem(TASK_KINDS, "classification", dataclasses.replace(kind, constant_prediction=constant_prediction))


def finetune_once(root, config, name, checkpoint="ck", **retry):
    from bert_ablation.training.finetune import finetune

    config = cfg.deep_merge(config, {"finetune": {"collapse_retry": retry}})
    settings = plan.finetune_settings(config, "sst2", "linear", plan.grid_points(config, "sst2")[0].key)
    out = str(root / name / "metrics.json")
    (metrics,) = finetune(str(root / checkpoint), str(root / "task"), "sst2", "linear", settings, [out], threads=1,
                          device="cpu")
    return out, metrics


def test_a_collapsed_restart_is_retried_at_a_third_of_the_rate(sst2, monkeypatch, caplog):
    """The first attempt is made to collapse, the next not; the retry trains from the same seeds
    at lr / 3, its scores are reported and every attempt is recorded (metrics.json, then the
    table's provenance)."""
    root, config = sst2
    calls = []

    def first_collapses(spec, outputs):
        calls.append(len(outputs))
        return "positive" if len(calls) == 1 else None

    collapse_as(monkeypatch, first_collapses)
    with caplog.at_level(logging.WARNING, logger="bert_ablation.training.finetune"):
        path, metrics = finetune_once(root, config, "retried", max_retries=2, lr_divisor=3)
    retry = metrics["collapse_retry"]
    assert len(calls) == 2 and retry["retries"] == 1 and retry["outcome"] == "recovered"
    assert retry["original_lr"] == 3e-3 and retry["lr"] == pytest.approx(1e-3)
    assert [a["lr"] for a in retry["attempts"]] == pytest.approx([3e-3, 1e-3])
    assert retry["attempts"][0]["collapsed_to"] == "positive" and retry["attempts"][1]["collapsed_to"] is None
    assert metrics["collapsed_to"] is None and metrics["dev"] == retry["attempts"][1]["dev"]
    assert metrics["hyperparameters"]["lr"] == 3e-3  # the grid point it was selected as
    assert "retrying at lr 0.001 (finetune.collapse_retry)" in caplog.text
    # the retry is the run a fresh job at lr / 3 would have trained: same seeds, same numbers
    collapse_as(monkeypatch, lambda s, o: None)
    _, direct = finetune_once(root, cfg.deep_merge(config, {"finetune": {"grid": {"lr": [1e-3]}}}), "direct",
                              max_retries=0)
    assert direct["dev"] == metrics["dev"] and direct["dev_curve"] == metrics["dev_curve"]
    assert direct["collapse_retry"]["retries"] == 0
    assert json.loads(load_runs([path]).collapse_retry.iloc[0])["attempts"] == retry["attempts"]


def test_retries_stop_after_max_retries(sst2, monkeypatch):
    root, config = sst2
    collapse_as(monkeypatch, lambda s, o: "negative")
    _, metrics = finetune_once(root, config, "stuck", max_retries=2, lr_divisor=2)
    retry = metrics["collapse_retry"]
    assert [a["lr"] for a in retry["attempts"]] == pytest.approx([3e-3, 1.5e-3, 7.5e-4])
    assert retry["outcome"] == "still collapsed" and metrics["collapsed_to"] == "negative"
    _, once = finetune_once(root, config, "never", max_retries=0)
    assert once["collapse_retry"]["outcome"] == "collapsed, not retried" and len(once["collapse_retry"]["attempts"]) == 1


def test_an_encoder_that_did_not_learn_is_not_retried(sst2, monkeypatch):
    """Its final checkpoint's ablation.json carries the pretraining health: a lower rate cannot
    fix the encoder, so a collapse there costs no retry."""
    import shutil

    root, config = sst2
    shutil.copytree(root / "ck", root / "ck_plateau")
    spec = json.loads((root / "ck_plateau" / "ablation.json").read_text())
    (root / "ck_plateau" / "ablation.json").write_text(json.dumps({**spec, "health": "plateau"}))
    collapse_as(monkeypatch, lambda s, o: "negative")
    _, metrics = finetune_once(root, config, "plateau", checkpoint="ck_plateau", max_retries=2, lr_divisor=3)
    retry = metrics["collapse_retry"]
    assert retry["retries"] == 0 and len(retry["attempts"]) == 1
    assert retry["outcome"] == "collapsed, not retried: its pretraining run is 'plateau' (not learnt)"
