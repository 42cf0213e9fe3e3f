"""Aggregation: selection on dev only, the paper's numbers beside ours, provenance."""
import math

import pandas as pd
import pytest

from bert_ablation.storage import read_json, write_json
from bert_ablation.tables import paper_reference, paper_rows, paper_value, write_table


def test_paper_rows_are_labelled_by_what_they_vary():
    reference = paper_reference()
    columns, rows = paper_rows(reference, "table6")
    assert columns == ["LM (ppl)", "MNLI-m", "MRPC", "SST-2"]
    assert rows["12/768/12"] == [3.99, 84.4, 86.7, 92.9] and rows["3/768/12"][0] == 5.84
    columns, rows = paper_rows(reference, "table8")
    assert list(rows) == ["80/10/10", "100/0/0", "80/0/20", "80/20/0", "0/20/80", "0/0/100"]
    assert paper_value(reference, "table8", "100/0/0", "NER Feature-based") == 94.0
    assert paper_value(reference, "table7", "Feature-based: Embeddings", "Dev F1") == 91.0
    assert math.isnan(paper_value(reference, "table7", "Feature-based: Embeddings", "Test F1"))
    assert math.isnan(paper_value(reference, "table5", "Our own row", "QNLI (Acc)"))


def test_figure5_is_matched_by_fraction_of_training():
    reference = paper_reference()
    assert paper_value(reference, "figure5", "BERT-Base (Masked LM)", "140", 140 / 350) == 83.2  # 400k of 1M
    assert paper_value(reference, "figure5", "BERT-Base (Left-to-Right)", "350", 1.0) == 82.2
    assert math.isnan(paper_value(reference, "figure5", "BERT-Base (Masked LM)", "100", 100 / 350))


def _finetune_metrics(tmp_path, hp, restart, dev, test):
    path = tmp_path / f"{hp}_{restart}.json"
    write_json(path, {
        "ablation": "bert_base", "checkpoint": "results/pretrain/bert_base/checkpoints/final", "task": "conll2003",
        "head": "linear", "hyperparameters": {"key": hp}, "restart": restart, "dev_split": "validation",
        "splits": {"validation": {"f1": dev}, "test": {"f1": test}}, "init_seed": restart, "data_seed": 10 + restart,
        "pretrain_spec_hash": "abc", "finetune_hash": hp,
    })
    return str(path)


def test_grid_point_is_chosen_on_dev_and_test_is_reported_for_it(tmp_path):
    # lr1 wins on dev; lr2 would win on test. The test column must show lr1's test scores.
    paths = [_finetune_metrics(tmp_path, "lr1", k, dev=90 + k, test=80 + k) for k in range(3)]
    paths += [_finetune_metrics(tmp_path, "lr2", k, dev=85 + k, test=95 + k) for k in range(3)]
    pretrain = tmp_path / "pretrain.json"
    write_json(pretrain, {"ablation": "bert_base", "spec_hash": "abc", "steps": 350, "heldout_perplexity": 7.5,
                          "model": {"layers": 4, "hidden": 64, "heads": 2}})
    base = {"paper_row": "Fine-tuning: BERT-Base", "row": "Fine-tuning: BERT-Base", "ablation": "bert_base",
            "head": "linear", "step": "final", "source": "finetune", "task": "conll2003", "metric": "f1",
            "spec_hash": "abc"}
    cells = [{**base, "column": "Dev F1", "split": None}, {**base, "column": "Test F1", "split": "test"},
             {**base, "column": "LM (ppl)", "source": "pretrain", "metric": "heldout_perplexity", "split": None}]
    outputs = {ext: str(tmp_path / f"t.{ext}") for ext in ("csv", "md", "tex", "png", "pdf")}
    outputs["provenance"] = str(tmp_path / "t.provenance.json")
    write_table(cells, "table7", paths, [str(pretrain)], outputs)
    table = pd.read_csv(outputs["csv"]).set_index("column")
    assert table.loc["Dev F1", "hp"] == "lr1" and table.loc["Test F1", "hp"] == "lr1"
    assert table.loc["Dev F1", "mean"] == pytest.approx(91.0) and table.loc["Test F1", "mean"] == pytest.approx(81.0)
    assert table.loc["Dev F1", "sd"] == pytest.approx(1.0) and table.loc["Test F1", "best"] == pytest.approx(82.0)
    assert table.loc["Dev F1", "paper"] == 96.4 and table.loc["Test F1", "paper"] == 92.4
    assert table.loc["LM (ppl)", "mean"] == 7.5 and table.loc["LM (ppl)", "n"] == 1
    provenance = read_json(outputs["provenance"])["cells"]
    assert [r["value"] for r in provenance[1]["restarts"]] == [80.0, 81.0, 82.0]
    assert provenance[1]["grid_means"] == {"lr1": 91.0, "lr2": 86.0}  # dev means, never test
    assert [r["init_seed"] for r in provenance[0]["restarts"]] == [0, 1, 2]
    assert "96.4" in open(outputs["md"]).read()
    assert open(outputs["pdf"], "rb").read(4) == b"%PDF"


def test_results_of_another_config_are_refused(tmp_path):
    paths = [_finetune_metrics(tmp_path, "lr1", 0, dev=90, test=80)]
    pretrain = tmp_path / "pretrain.json"
    write_json(pretrain, {"ablation": "bert_base", "spec_hash": "abc", "steps": 350, "model": {}})
    cell = {"paper_row": "BERT-Base", "row": "BERT-Base", "ablation": "bert_base", "head": "linear", "step": "final",
            "source": "finetune", "task": "conll2003", "metric": "f1", "column": "Dev F1", "split": None,
            "spec_hash": "def"}  # what this config's bert_base hashes to
    outputs = {ext: str(tmp_path / f"t.{ext}") for ext in ("csv", "md", "tex", "png", "pdf", "provenance")}
    with pytest.raises(ValueError, match=r"(pretrain|lr1_0).json comes from a pretraining run of another config \(spec "
                                         r"hash abc; this config's 'bert_base' is def\). Rebuild it: delete "
                                         r"results/pretrain/bert_base"):
        write_table([cell], "table7", paths, [str(pretrain)], outputs)
    assert not any(map(lambda p: __import__("os").path.exists(p), outputs.values()))  # nothing half-written
