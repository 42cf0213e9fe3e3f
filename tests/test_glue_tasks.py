"""CoLA, STS-B, QQP and RTE (and MNLI's unlabelled rows): GLUE files, dropped rows, config, fine-tuning."""

import json
import logging
import math

import pytest

from bert_ablation import config as cfg
from bert_ablation import plan
from bert_ablation.data.task_files import local_splits
from bert_ablation.data.task_sources import build_task
from bert_ablation.facts.tasks import TASKS, TaskDataError, validate_records


def _tsv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")


def _valid(name, splits):
    for split, records in splits.items():
        validate_records(TASKS[name], split, records)
    return splits


def test_cola_files_have_no_header(tmp_path):
    _tsv(tmp_path / "CoLA" / "train.tsv", [["gj04", "1", "", "Our friends won't buy this analysis."],
                                           ["gj04", "0", "*", "They drank the pub."]])
    _tsv(tmp_path / "CoLA" / "dev.tsv", [["cj99", "1", "", "The more we study verbs, the crazier they get."]])
    splits, dropped = local_splits("cola", {"path": str(tmp_path)})
    assert _valid("cola", splits) == {
        "train": [{"sentence": "Our friends won't buy this analysis.", "label": 1, "idx": 0},
                  {"sentence": "They drank the pub.", "label": 0, "idx": 1}],
        "validation": [{"sentence": "The more we study verbs, the crazier they get.", "label": 1, "idx": 0}]}
    assert dropped == {} and TASKS["cola"].labels[0] == "unacceptable"

    _tsv(tmp_path / "CoLA" / "dev.tsv", [["cj99", "1", "", "Fine."], ["cj99", "1", "A sentence without a source."]])
    with pytest.raises(TaskDataError, match=r"cola: .*dev\.tsv, line 2: 3 tab-separated fields, expected 4 "
                                            r"\(source, label, original_label, sentence\)"):
        local_splits("cola", {"path": str(tmp_path)})
    _tsv(tmp_path / "CoLA" / "dev.tsv", [["cj99", "*", "", "Bad label."]])
    with pytest.raises(TaskDataError, match=r"dev\.tsv, line 1, column 'label': unknown label '\*'; "
                                            r"allowed labels are 0 \(unacceptable\), 1 \(acceptable\)"):
        local_splits("cola", {"path": str(tmp_path)})


STSB_HEADER = ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2",
               "score"]


def _stsb_row(i, a, b, score):
    return [str(i), "main-captions", "MSRvid", "2012test", f"{i:04d}", "none", "none", a, b, score]


def test_stsb_scores_are_floats_and_checked(tmp_path):
    _tsv(tmp_path / "train.tsv", [STSB_HEADER, _stsb_row(0, "A plane is taking off.", "A plane takes off.", "5.000"),
                                  _stsb_row(1, "A man plays a flute.", "A man eats.", "0.5")])
    _tsv(tmp_path / "dev.tsv", [STSB_HEADER, _stsb_row(0, "A man is dancing.", "A man dances.", "3.8")])
    splits, dropped = local_splits("stsb", {"path": str(tmp_path)})
    assert _valid("stsb", splits) == {
        "train": [{"sentence1": "A plane is taking off.", "sentence2": "A plane takes off.", "label": 5.0, "idx": 0},
                  {"sentence1": "A man plays a flute.", "sentence2": "A man eats.", "label": 0.5, "idx": 1}],
        "validation": [{"sentence1": "A man is dancing.", "sentence2": "A man dances.", "label": 3.8, "idx": 0}]}
    assert dropped == {}
    summary = build_task("stsb", {"source": "local", "path": str(tmp_path)}, {}, str(tmp_path / "out"))
    assert summary["train"] == {"rows": 2, "scores": {"min": 0.5, "max": 5.0, "mean": 2.75}}

    _tsv(tmp_path / "dev.tsv", [STSB_HEADER, _stsb_row(0, "A.", "B.", "3.8"), _stsb_row(1, "A.", "B.", "high")])
    with pytest.raises(TaskDataError, match=r"stsb: .*dev\.tsv, line 3, column 'score': unknown label 'high'; "
                                            r"a score must be a number"):
        local_splits("stsb", {"path": str(tmp_path)})


@pytest.mark.parametrize("label", [5.5, -0.1, math.nan, math.inf, "3.0", True, None])
def test_a_regression_label_is_a_number_in_the_score_range(label):
    validate_records(TASKS["stsb"], "train", [{"sentence1": "a", "sentence2": "b", "label": 3}])  # an int is a score
    with pytest.raises(TaskDataError, match=r"stsb/train row 1: label .* is not a score in \[0, 5\]"):
        validate_records(TASKS["stsb"], "train", [{"sentence1": "a", "sentence2": "b", "label": 2.0},
                                                  {"sentence1": "a", "sentence2": "b", "label": label}])


QQP_HEADER = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]


def test_qqp_rows_with_missing_fields_are_dropped_and_counted(tmp_path, caplog):
    # As in the GLUE train.tsv, a question holding a newline breaks its row over two short lines.
    _tsv(tmp_path / "train.tsv", [QQP_HEADER, ["1", "1", "2", "How do I cook rice?", "How is rice cooked?", "1"],
                                  ["2", "3", "4", "Was Muhammad a real"],
                                  ["historical figure?", "What is the evidence for him?", "0"],
                                  ["3", "5", "6", "Why is the sky blue?", "What is blue?", "0"]])
    _tsv(tmp_path / "dev.tsv", [QQP_HEADER, ["9", "1", "2", "Who?", "Whom?", "0"]])
    splits, dropped = local_splits("qqp", {"path": str(tmp_path)})
    assert _valid("qqp", splits)["train"] == [
        {"question1": "How do I cook rice?", "question2": "How is rice cooked?", "label": 1, "idx": 0},
        {"question1": "Why is the sky blue?", "question2": "What is blue?", "label": 0, "idx": 1}]
    assert dropped == {"train": {"missing fields": [3, 4]}}

    with caplog.at_level(logging.INFO, logger="bert_ablation.data.task_sources"):
        summary = build_task("qqp", {"source": "local", "path": str(tmp_path)}, {}, str(tmp_path / "out"))
    assert summary == {
        "train": {"rows": 2, "labels": {"duplicate": 1, "not_duplicate": 1},
                  "dropped": {"missing fields": {"rows": 2, "lines": [3, 4]}}},
        "validation": {"rows": 1, "labels": {"not_duplicate": 1}}}
    assert "task qqp/train: dropped 2 rows: missing fields" in caplog.text

    # A row with too many fields is not a broken question: the file is wrong.
    _tsv(tmp_path / "dev.tsv", [QQP_HEADER, ["9", "1", "2", "Who?", "Whom?", "0", "extra"]])
    with pytest.raises(TaskDataError, match=r"dev\.tsv, line 2: 7 tab-separated fields, expected 6"):
        local_splits("qqp", {"path": str(tmp_path)})
    _tsv(tmp_path / "dev.tsv", [QQP_HEADER, ["9", "1", "2", "Who?"]])
    with pytest.raises(TaskDataError, match=r"dev\.tsv has no rows left \(1 dropped: missing fields\)"):
        local_splits("qqp", {"path": str(tmp_path)})


def test_rte_labels(tmp_path):
    header = ["index", "sentence1", "sentence2", "label"]
    _tsv(tmp_path / "RTE" / "train.tsv", [header, ["0", "Ann won.", "Ann lost.", "not_entailment"],
                                          ["1", "Ann won.", "Ann played.", "entailment"]])
    _tsv(tmp_path / "RTE" / "dev.tsv", [header, ["0", "It rains.", "It is wet.", "entailment"]])
    splits, dropped = local_splits("rte", {"path": str(tmp_path / "RTE")})
    assert [r["label"] for r in _valid("rte", splits)["train"]] == [1, 0] and dropped == {}
    assert splits["validation"] == [{"sentence1": "It rains.", "sentence2": "It is wet.", "label": 0, "idx": 0}]


def test_mnli_rows_without_a_gold_label_are_dropped(tmp_path):
    header = ["index", "promptID", "pairID", "genre", "sentence1", "sentence2", "label1", "gold_label"]
    rows = [header, ["0", "1", "1e", "fiction", "A cat sat.", "A cat.", "entailment", "entailment"],
            ["1", "2", "2n", "fiction", "A dog ran.", "It was fast.", "neutral", "-"],
            ["2", "3", "3c", "fiction", "Sun.", "Moon.", "contradiction", "contradiction"]]
    for file in ("train.tsv", "dev_matched.tsv", "dev_mismatched.tsv"):
        _tsv(tmp_path / file, rows)
    splits, dropped = local_splits("mnli", {"path": str(tmp_path)})
    assert [r["label"] for r in splits["validation_matched"]] == [0, 2]
    reason = "gold_label '-' (no annotator consensus)"
    assert dropped == {split: {reason: [3]} for split in ("train", "validation_matched", "validation_mismatched")}


def test_the_world_has_no_generator_for_these_tasks():
    base = {"tasks": {name: {"source": "hub"} for name in ("cola", "stsb", "qqp", "rte")}}
    assert cfg.validate(base)["tasks"]["stsb"]["source"] == "hub"
    for name in ("cola", "stsb", "qqp", "rte"):
        with pytest.raises(cfg.ConfigError, match=rf"tasks\.{name}\.source: the built-in world has no '{name}' task"):
            cfg.validate({"tasks": {name: {"n_train": 10}}})


def test_stsb_fine_tunes_end_to_end(tmp_path, tokenizer):
    """A tiny random BERT through finetune.finetune: one float output, scored by correlations."""
    import random

    import torch
    from transformers import BertModel

    from bert_ablation.models.modeling import bert_config
    from bert_ablation.storage import write_json
    from bert_ablation.training.finetune import finetune

    checkpoint = tmp_path / "checkpoint"
    torch.manual_seed(0)
    model = {"layers": 1, "hidden": 16, "heads": 2, "intermediate": 32, "dropout": 0.1, "max_position_embeddings": 64}
    BertModel(bert_config(model, len(tokenizer), tokenizer.pad_token_id, causal=False)).save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    write_json(checkpoint / "ablation.json", {"name": "tiny", "step": 0, "spec_hash": "0"})

    rng = random.Random(0)
    words = "the cat dog sat on mat ran far big small red blue house tree car road".split()
    rows = [_stsb_row(i, " ".join(rng.choices(words, k=5)), " ".join(rng.choices(words, k=4)),
                      f"{rng.uniform(0, 5):.2f}") for i in range(24)]
    _tsv(tmp_path / "data" / "train.tsv", [STSB_HEADER, *rows[:16]])
    _tsv(tmp_path / "data" / "dev.tsv", [STSB_HEADER, *rows[16:]])
    config = cfg.validate({"tasks": {"stsb": {"source": "local", "path": str(tmp_path / "data"), "max_seq_length": 32}},
                           "finetune": {"grid": {"lr": [1e-3], "batch_size": [4], "epochs": [1]}, "precision": "fp32"}})
    build_task("stsb", config["tasks"]["stsb"], {}, str(tmp_path / "task"))
    settings = plan.finetune_settings(config, "stsb", "linear", plan.grid_points(config, "stsb")[0].key)
    out = tmp_path / "seed0" / "metrics.json"
    finetune(str(checkpoint), str(tmp_path / "task"), "stsb", "linear", settings, [str(out)], threads=1, device="cpu")
    metrics = json.loads(out.read_text())
    assert metrics["dev_split"] == "validation" and set(metrics["dev"]) == {"pearson", "spearman"}
    assert all(-100 <= v <= 100 for v in metrics["dev"].values()) and metrics["train_examples"] == 16
    # what a rehearsal extrapolates from: each of the 16 / 4 optimizer steps, and the peak RSS
    assert len(metrics["step_seconds"]) == 4 and all(0 < s < metrics["seconds"] for s in metrics["step_seconds"])
    assert metrics["peak_rss_mb"] > 100 and "peak_gpu_mb" not in metrics


def test_a_checkpoint_of_another_config_or_vocabulary_is_refused_before_training(tmp_path, tokenizer):
    import torch
    from transformers import BertModel

    from bert_ablation import config as cfg
    from bert_ablation import plan
    from bert_ablation.models.modeling import bert_config
    from bert_ablation.storage import write_json
    from bert_ablation.training.finetune import CheckpointError, finetune

    config = cfg.validate({"tasks": {"sst2": {}}})
    settings = plan.finetune_settings(config, "sst2", "linear", plan.grid_points(config, "sst2")[0].key)
    checkpoint = tmp_path / "checkpoint"
    model = {"layers": 1, "hidden": 16, "heads": 2, "intermediate": 32, "dropout": 0.1, "max_position_embeddings": 64}
    torch.manual_seed(0)
    BertModel(bert_config(model, len(tokenizer) - 10, tokenizer.pad_token_id, causal=False)).save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    write_json(checkpoint / "ablation.json", {"name": "tiny", "step": 0, "spec_hash": "abc"})
    outputs = [str(tmp_path / "seed0" / "metrics.json")]
    with pytest.raises(CheckpointError, match=r"pretrained with another config \(spec hash abc, this config's is def\)"):
        finetune(str(checkpoint), str(tmp_path / "no-task"), "sst2", "linear", settings, outputs,
                 expected_spec_hash="def")
    with pytest.raises(CheckpointError, match=rf"the model has {len(tokenizer) - 10} embedding rows but its tokenizer "
                                              rf"{len(tokenizer)} tokens"):
        finetune(str(checkpoint), str(tmp_path / "no-task"), "sst2", "linear", settings, outputs,
                 expected_spec_hash="abc")
    assert not (tmp_path / "seed0").exists()
