"""Aggregation: selection on dev only, the paper's numbers beside ours, provenance."""
import math

import pandas as pd
import pytest

from bert_ablation.evaluation.paper import paper_table, paper_tables
from bert_ablation.evaluation.tables import write_table
from bert_ablation.plan import Cell
from bert_ablation.storage import read_json, write_json


def test_paper_rows_are_labelled_by_what_they_vary():
    table6 = paper_table("table6")
    assert table6.columns == ("LM (ppl)", "MNLI-m", "MRPC", "SST-2") and table6.row_label == "#L/#H/#A"
    assert table6.rows["12/768/12"] == (3.99, 84.4, 86.7, 92.9) and table6.rows["3/768/12"][0] == 5.84
    table8 = paper_table("table8")
    assert list(table8.rows) == ["80/10/10", "100/0/0", "80/0/20", "80/20/0", "0/20/80", "0/0/100"]
    assert table8.value("100/0/0", "NER Feature-based") == 94.0
    assert paper_table("table7").value("Feature-based: Embeddings", "Dev F1") == 91.0
    assert math.isnan(paper_table("table7").value("Feature-based: Embeddings", "Test F1"))
    assert math.isnan(paper_table("table5").value("Our own row", "QNLI (Acc)"))
    assert paper_table("protocol") is None and set(paper_tables()) == {"table5", "table6", "table7", "table8",
                                                                        "figure5"}


def test_figure5_is_matched_by_fraction_of_training():
    figure5 = paper_table("figure5")
    assert figure5.kind == "steps" and figure5.columns[-1] == "1000"
    assert figure5.value("BERT-Base (Masked LM)", "140", 140 / 350) == 83.2  # 400k of 1M
    assert figure5.value("BERT-Base (Left-to-Right)", "350", 1.0) == 82.2
    assert math.isnan(figure5.value("BERT-Base (Masked LM)", "100", 100 / 350))


def _finetune_metrics(tmp_path, hp, restart, dev, test):
    path = tmp_path / f"{hp}_{restart}.json"
    write_json(path, {
        "ablation": "bert_base", "checkpoint": "results/pretrain/bert_base/checkpoints/final", "task": "conll2003",
        "head": "linear", "hyperparameters": {"key": hp}, "restart": restart, "dev_split": "validation",
        "splits": {"validation": {"f1": dev}, "test": {"f1": test}}, "init_seed": restart, "data_seed": 10 + restart,
        "pretrain_spec_hash": "abc", "finetune_hash": hp,
    })
    return str(path)


def _table7_run(tmp_path):
    """The pretraining metrics of one bert_base run and the cell fields its Table 7 rows share."""
    pretrain = tmp_path / "pretrain.json"
    write_json(pretrain, {"ablation": "bert_base", "spec_hash": "abc", "steps": 350, "heldout_perplexity": 7.5,
                          "model": {"layers": 4, "hidden": 64, "heads": 2}})
    base = {"paper_row": "Fine-tuning: BERT-Base", "row": "Fine-tuning: BERT-Base", "ablation": "bert_base",
            "head": "linear", "step": "final", "source": "finetune", "task": "conll2003", "metric": "f1",
            "spec_hash": "abc", "origin": "pretrain"}
    return pretrain, base


def test_grid_point_is_chosen_on_dev_and_test_is_reported_for_it(tmp_path):
    # lr1 wins on dev; lr2 would win on test. The test column must show lr1's test scores.
    paths = [_finetune_metrics(tmp_path, "lr1", k, dev=90 + k, test=80 + k) for k in range(3)]
    paths += [_finetune_metrics(tmp_path, "lr2", k, dev=85 + k, test=95 + k) for k in range(3)]
    pretrain, base = _table7_run(tmp_path)
    cells = [Cell(**base, column="Dev F1", split=None), Cell(**base, column="Test F1", split="test"),
             Cell(**{**base, "source": "pretrain", "metric": "heldout_perplexity"}, column="LM (ppl)", split=None)]
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
            "spec_hash": "def", "origin": "pretrain"}  # what this config's bert_base hashes to
    outputs = {ext: str(tmp_path / f"t.{ext}") for ext in ("csv", "md", "tex", "png", "pdf", "provenance")}
    with pytest.raises(ValueError, match=r"(pretrain|lr1_0).json comes from a pretraining run of another config \(spec "
                                         r"hash abc; this config's 'bert_base' is def\). Rebuild it: delete "
                                         r"results/pretrain/bert_base"):
        write_table([Cell(**cell)], "table7", paths, [str(pretrain)], outputs)
    assert not any(map(lambda p: __import__("os").path.exists(p), outputs.values()))  # nothing half-written


def test_a_nan_restart_is_reported_as_failed_and_never_wins_the_grid(tmp_path, caplog):
    # lr_nan's dev mean over its finished restarts (95) beats lr_ok's (91) only because a NaN
    # left it two restarts; lr_ok must be selected. lr_ok's restart 1 fails on test (NaN).
    paths = [_finetune_metrics(tmp_path, "lr_nan", k, dev=[95.0, math.nan, 95.0][k], test=99.0) for k in range(3)]
    paths += [_finetune_metrics(tmp_path, "lr_ok", k, dev=90.0 + k, test=[80.0, math.nan, 82.0][k]) for k in range(3)]
    pretrain, base = _table7_run(tmp_path)
    cells = [Cell(**base, column="Dev F1", split=None), Cell(**base, column="Test F1", split="test")]
    outputs = {ext: str(tmp_path / f"t.{ext}") for ext in ("csv", "md", "tex", "png", "pdf")}
    outputs["provenance"] = str(tmp_path / "t.provenance.json")
    with caplog.at_level("WARNING", logger="bert_ablation.evaluation.tables"):
        write_table(cells, "table7", paths, [str(pretrain)], outputs)

    table = pd.read_csv(outputs["csv"]).set_index("column")
    assert (table["hp"] == "lr_ok").all()
    assert list(table["n"]) == [3, 3] and list(table["failed"]) == [0, 1]
    assert table.loc["Test F1", "mean"] == pytest.approx(81.0) and table.loc["Test F1", "best"] == pytest.approx(82.0)
    assert table.loc["Test F1", "sd"] == pytest.approx(math.sqrt(2), abs=1e-4)  # over the two finished restarts
    provenance = read_json(outputs["provenance"])["cells"]
    assert provenance[0]["grid_means"]["lr_nan"] > provenance[0]["grid_means"]["lr_ok"]  # what idxmax would pick
    assert provenance[0]["grid_failed"] == {"lr_nan": 1, "lr_ok": 0}
    assert [(r["value"], r["failed"]) for r in provenance[1]["restarts"]] == [(80.0, False), (None, True), (82.0, False)]
    markdown = open(outputs["md"]).read()
    assert "81.0 ± 1.4 (82.0), 1/3 failed [92.4]" in markdown
    assert '"k/n failed": k of the cell\'s n restarts failed' in markdown
    assert "(1/3 failed)" in open(outputs["tex"]).read()
    failed_test = [r.getMessage() for r in caplog.records if "failed restart" in r.getMessage()]
    assert len(failed_test) == 1 and failed_test[0].endswith(f"{tmp_path / 'lr_ok_1.json'} (counted as failed, left "
                                                             "out of mean/sd/best).")
    assert any("grid point lr_nan has 1 failed dev restart" in r.getMessage() for r in caplog.records)


def test_among_grid_points_with_failures_the_fewest_win_then_the_best_mean(tmp_path):
    from bert_ablation.evaluation.tables import _finetune_cell, load_runs

    dev = {"a": [70.0, None, None], "b": [50.0, 51.0, None], "c": [60.0, 61.0, None]}  # null: a missing metric
    paths = [_finetune_metrics(tmp_path, hp, k, dev=v, test=0.0) for hp, values in dev.items()
             for k, v in enumerate(values)]
    cell = Cell(ablation="bert_base", step="final", task="conll2003", head="linear", metric="f1", row="r",
                column="c", paper_row="r", origin="pretrain", spec_hash="abc", source="finetune", split=None)
    chosen, selected, means, failed = _finetune_cell(load_runs(paths), cell, "t")
    assert chosen == "c" and failed == {"a": 2, "b": 1, "c": 1} and means["a"] == 70.0
    assert selected["value"].isna().sum() == 1  # the failed restart is kept, not dropped
    nothing = {hp: [math.nan] * 2 for hp in ("x", "y")}
    paths = [_finetune_metrics(tmp_path, hp, k, dev=v, test=0.0) for hp, values in nothing.items()
             for k, v in enumerate(values)]
    assert _finetune_cell(load_runs(paths), cell, "t")[0] == "x"  # all failed: first point, reported as failed


def _pretrain_run(tmp_path, ablation, objective, steps, ppl, start):
    folder = tmp_path / "pretrain" / ablation
    folder.mkdir(parents=True)
    step = list(range(50, steps + 1, 50))
    loss = [start * (0.3 + 0.7 * math.exp(-s / 200)) for s in step]
    pd.DataFrame({"step": step, "loss": loss, "lm_loss": loss, "nsp_loss": 0.0, "lr": 1e-4, "tokens": step}).to_csv(
        folder / "log.csv", index=False)
    kind = "next-token" if objective == "ltr" else "masked-LM"
    write_json(folder / "metrics.json", {"ablation": ablation, "objective": objective, "steps": steps,
                                         "heldout_perplexity": ppl, "heldout_perplexity_kind": kind})
    return str(folder / "log.csv"), str(folder / "metrics.json")


def test_loss_curves_have_one_panel_per_objective_and_each_run_once(tmp_path):
    from bert_ablation.evaluation.plots import plot_loss_curves

    # The default config's 14 runs: 12 MLM+NSP (one of 0 steps), one MLM, one LTR.
    mlm_nsp = ["bert_base", "mask_0_0_100", "mask_0_20_80", "mask_100_0_0", "mask_80_0_20", "mask_80_20_0",
               "size_few_heads", "size_half_depth", "size_shallow", "size_wide", "size_wide_deep"]
    specs = [(a, "mlm_nsp", 700, 100.0 + 3 * k, 6.5 + 0.1 * k) for k, a in enumerate(mlm_nsp)]
    specs += [("no_nsp", "mlm", 700, 120.0, 6.0), ("ltr", "ltr", 700, 14.2, 5.5),
              ("no_pretraining", "mlm_nsp", 0, 512.0, 7.0)]
    specs += [("bert_base.seed1", "mlm_nsp", 700, 101.0, 6.4)]  # a second pretraining seed: bert_base's entry
    runs = {a: _pretrain_run(tmp_path, a, o, steps, ppl, start) for a, o, steps, ppl, start in specs}
    plateau = read_json(runs["mask_0_0_100"][1])
    write_json(runs["mask_0_0_100"][1], {**plateau, "health": {"status": "plateau", "problems": [
        {"status": "plateau", "detail": "0.97 x the unigram's"}]}})
    png = tmp_path / "pretraining_loss.png"
    fig = plot_loss_curves({a: r[0] for a, r in runs.items()}, {a: r[1] for a, r in runs.items()},
                           [str(png), str(tmp_path / "pretraining_loss.pdf")])
    axes = [ax for ax in fig.axes if ax.lines]
    assert len(fig.axes) == len(axes) == 3  # MLM+NSP, MLM, LTR: three loss scales, never one axis
    assert [ax.get_title() for ax in axes] == ["MLM + NSP (11 ablations)", "MLM, no NSP (1 ablation)",
                                               "LTR, next token (1 ablation)"]
    labels = [line.get_label() for ax in axes for line in ax.lines if not line.get_label().startswith("_")]
    drawn = [label.split(":")[0] for label in labels]
    # each ablation once (its seeds under one label), the 0-step run not at all
    assert sorted(drawn) == sorted(a for a in runs if a not in ("no_pretraining", "bert_base.seed1"))
    assert "bert_base: ppl 100.0 / 101.0 (2 seeds)" in labels and "ltr: ppl 14.2" in labels
    seed_lines = [line for line in axes[0].lines if line.get_color() == axes[0].lines[0].get_color()]
    assert len(seed_lines) == 2 and seed_lines[1].get_alpha() < 1  # seed 1 drawn in bert_base's colour, fainter
    assert "mask_0_0_100: ppl 103.0 (not learnt: plateau)" in labels
    for ax in axes:
        labelled = [line for line in ax.lines if not line.get_label().startswith("_")]
        colours = [line.get_color() for line in labelled]
        assert len(set(map(str, colours))) == len(colours)  # no colour repeats between ablations of a panel
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [line.get_label() for line in labelled]
    assert axes[2].get_legend().get_title().get_text() == "held-out next-token perplexity"
    assert any("no_pretraining: ppl 512.0" in t.get_text() for t in fig.texts)
    assert png.stat().st_size > 10_000


def test_collapsed_restarts_are_counted_logged_and_in_the_provenance(tmp_path, caplog):
    import json
    import logging

    paths = []
    for k, (value, collapsed) in enumerate([(80.0, None), (50.0, "negative"), (78.0, None)]):
        path = tmp_path / f"sst2_{k}.json"
        write_json(path, {
            "ablation": "bert_base", "checkpoint": "results/pretrain/bert_base/checkpoints/final", "task": "sst2",
            "head": "linear", "hyperparameters": {"key": "lr1"}, "restart": k, "dev_split": "validation",
            "splits": {"validation": {"accuracy": value}}, "init_seed": k, "data_seed": k,
            "pretrain_spec_hash": "abc", "finetune_hash": "h", "collapsed_to": collapsed})
        paths.append(str(path))
    pretrain = tmp_path / "pretrain.json"
    write_json(pretrain, {"ablation": "bert_base", "spec_hash": "abc", "steps": 10, "model": {"layers": 4, "hidden": 64,
                                                                                             "heads": 2}})
    cell = {"paper_row": "BERT-Base", "row": "BERT-Base", "ablation": "bert_base", "head": "linear", "step": "final",
            "source": "finetune", "task": "sst2", "metric": "accuracy", "spec_hash": "abc", "column": "SST-2 (Acc)",
            "split": None, "origin": "pretrain"}
    outputs = {ext: str(tmp_path / f"t.{ext}") for ext in ("csv", "md", "tex", "png", "pdf")}
    outputs["provenance"] = str(tmp_path / "t.provenance.json")
    with caplog.at_level(logging.WARNING, logger="bert_ablation.evaluation.tables"):
        write_table([Cell(**cell)], "table5", paths, [str(pretrain)], outputs)
    assert pd.read_csv(outputs["csv"])["collapsed"].tolist() == [1]
    assert "restart 1 collapsed to predicting 'negative' for every dev example (accuracy = 50.0)" in caplog.text
    restarts = json.loads(open(outputs["provenance"]).read())["cells"][0]["restarts"]
    assert [r["collapsed_to"] for r in restarts] == [None, "negative", None]


def test_a_steps_figure_of_any_name_gets_the_papers_curve_by_its_paper_table(tmp_path):
    """Figures are data: a second steps figure (say, under the rotary encoder) gets Figure 5's
    numbers through paper_table, matched by the fraction of pretraining done."""
    pretrain = tmp_path / "pretrain.json"
    write_json(pretrain, {"ablation": "bert_base", "spec_hash": "abc", "steps": 350, "model": {"layers": 4, "hidden": 64,
                                                                                               "heads": 2}})
    paths = []
    for step, column in (("step-140", "140"), ("final", "350")):
        for k in range(2):
            path = tmp_path / f"{step}_{k}.json"
            write_json(path, {"ablation": "bert_base", "checkpoint": f"ck/{step}", "task": "mnli", "head": "linear",
                              "hyperparameters": {"key": "lr1"}, "restart": k, "dev_split": "validation_matched",
                              "splits": {"validation_matched": {"accuracy": 70.0 + k}}, "init_seed": k,
                              "data_seed": k, "pretrain_spec_hash": "abc", "finetune_hash": "h", "pretrain_step": step})
            paths.append(str(path))
    cells = [Cell(paper_row="BERT-Base (Masked LM)", row="BERT-Base (Masked LM)", ablation="bert_base",
                  head="linear", step=step, source="finetune", task="mnli", metric="accuracy",
                  column=column, split=None, spec_hash="abc", origin="pretrain") for step, column in (("step-140", "140"),
                                                                                        ("final", "350"))]
    outputs = {ext: str(tmp_path / f"f.{ext}") for ext in ("csv", "md", "tex", "png", "pdf")}
    outputs["provenance"] = str(tmp_path / "f.provenance.json")
    write_table(cells, "figure5_rotary", paths, [str(pretrain)], outputs, kind="figure", paper_table="figure5")
    table = pd.read_csv(outputs["csv"]).set_index("column")
    assert table.loc[140, "paper"] == 83.2 and table.loc[350, "paper"] == 84.4  # 400k and 1M of the paper's 1M
    assert table.loc[140, "mean"] == pytest.approx(70.5)


def _health_table(tmp_path, monkeypatch, pretrain_health, collapsed):
    """A two-row SST-2 table: BERT-Base (learnt) and 100/0/0 (whose run's health is given); the
    100/0/0 restarts collapse as ``collapsed`` says. Returns the outputs and the drawn figure."""
    from bert_ablation.evaluation import plots

    paths, cells = [], []
    for ablation, row in (("bert_base", "BERT-Base"), ("mask_100_0_0", "100/0/0")):
        for k in range(3):
            path = tmp_path / f"{ablation}_{k}.json"
            down = ablation == "mask_100_0_0"
            write_json(path, {
                "ablation": ablation, "checkpoint": f"results/pretrain/{ablation}/checkpoints/final", "task": "sst2",
                "head": "linear", "hyperparameters": {"key": "lr1"}, "restart": k, "dev_split": "validation",
                "splits": {"validation": {"accuracy": 50.0 if down and collapsed[k] else 80.0 + k}}, "init_seed": k,
                "data_seed": k, "pretrain_spec_hash": ablation, "finetune_hash": "h",
                "collapsed_to": "negative" if down and collapsed[k] else None,
                "collapse_retry": {"retries": 1 if down and collapsed[k] else 0}})
            paths.append(str(path))
        write_json(tmp_path / f"{ablation}.pretrain.json", {
            "ablation": ablation, "spec_hash": ablation, "steps": 700, "model": {"layers": 4, "hidden": 64, "heads": 2},
            "health": pretrain_health if ablation == "mask_100_0_0" else {"status": "learnt", "problems": []}})
        cells.append(Cell(paper_row=row, row=row, ablation=ablation, head="linear", step="final", source="finetune",
                          task="sst2", metric="accuracy", spec_hash=ablation, column="SST-2 (Acc)", split=None,
                          origin="pretrain"))
    outputs = {ext: str(tmp_path / f"t.{ext}") for ext in ("csv", "md", "tex", "png", "pdf")}
    outputs["provenance"] = str(tmp_path / "t.provenance.json")
    drawn = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, paths: drawn.append(fig))
    write_table(cells, "table8", paths, [str(tmp_path / f"{a}.pretrain.json") for a in ("bert_base", "mask_100_0_0")],
                outputs)
    return outputs, drawn[0]


PLATEAU = {"status": "plateau", "problems": [{"status": "plateau", "detail": "held-out masked-LM perplexity 162.7 is "
                                              "1.00 x the unigram baseline's 162.5", "fix": "..."}]}


def test_a_row_whose_pretraining_did_not_learn_is_marked_in_every_output(tmp_path, monkeypatch):
    outputs, fig = _health_table(tmp_path, monkeypatch, PLATEAU, collapsed=[False, False, False])
    csv = pd.read_csv(outputs["csv"], keep_default_na=False).set_index("row")
    assert csv.loc["100/0/0", "pretrain_health"] == "plateau" and csv.loc["BERT-Base", "pretrain_health"] == "learnt"
    assert csv.loc["100/0/0", "not_learnt"].startswith("plateau: held-out masked-LM perplexity 162.7")
    assert csv.loc["BERT-Base", "not_learnt"] == ""
    md = open(outputs["md"]).read()
    assert "| 100/0/0 (not learnt: plateau) |" in md and "| BERT-Base |" in md
    assert "\"not learnt\": the row's pretraining run did not learn" in md
    tex = open(outputs["tex"]).read()
    assert "100/0/0 (not learnt: plateau) &" in tex and "Not learnt:" in tex
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "100/0/0 (not learnt: plateau)" in labels and "BERT-Base" in labels
    assert sorted(p.get_hatch() or "" for p in ax.patches) == ["", "//"]
    cell = read_json(outputs["provenance"])["cells"][1]
    assert cell["pretrain_health"] == "plateau" and cell["not_learnt"].startswith("plateau:")


def test_a_cell_whose_restarts_all_collapsed_is_flagged_in_the_table(tmp_path, monkeypatch):
    outputs, fig = _health_table(tmp_path, monkeypatch, {"status": "learnt", "problems": []},
                                 collapsed=[True, True, True])
    csv = pd.read_csv(outputs["csv"]).set_index("row")
    assert bool(csv.loc["100/0/0", "all_collapsed"]) and not bool(csv.loc["BERT-Base", "all_collapsed"])
    assert csv.loc["100/0/0", "retried"] == 3 and csv.loc["100/0/0", "collapsed"] == 3
    assert "50.0 ± 0.0 (50.0), all 3 collapsed" in open(outputs["md"]).read()
    assert "(all collapsed)" in open(outputs["tex"]).read()
    assert [p.get_hatch() for p in fig.axes[0].patches].count("xx") == 1
    # two of three collapsed: counted, not flagged
    outputs, _ = _health_table(tmp_path / "some", monkeypatch, {"status": "learnt"}, collapsed=[True, True, False])
    assert not pd.read_csv(outputs["csv"]).set_index("row").loc["100/0/0", "all_collapsed"]


def test_many_long_rows_in_few_columns_keep_wide_axes(tmp_path):
    """Table 7's shape (7 rows with long labels, 2 columns): the bars' axes used to be squeezed to a
    sliver by the legend; they keep most of the figure's width, and the legend is saved whole."""
    import matplotlib.image

    from bert_ablation.evaluation.plots import plot_table

    rows = ["Fine-tuning: BERT-Base", "Feature-based: Embeddings", "Feature-based: Second-to-Last Hidden",
            "Feature-based: Last Hidden", "Feature-based: Weighted Sum Last Four Hidden",
            "Feature-based: Concat Last Four Hidden", "Feature-based: Weighted Sum All 12 Layers"]
    summary = pd.DataFrame([{"row": row, "column": column, "source": "finetune", "mean": 90.0 + k, "sd": 1.0,
                             "paper": 95.0, "pretrain_health": "learnt", "all_collapsed": False}
                            for k, row in enumerate(rows) for column in ("Dev F1", "Test F1")])
    png = tmp_path / "t7.png"
    figure = plot_table(summary, "CoNLL-2003 Named Entity Recognition results.", [str(png)])
    axes = figure.axes[0].get_position()
    assert axes.width > 0.6  # of the figure's width
    legend = figure.axes[0].get_legend()
    assert len(legend.get_texts()) == len(rows) + 1  # the rows and the paper's tick
    extent = _extent(figure, legend)
    assert 0 <= extent.x0 < extent.x1 <= figure.bbox.x1  # within the figure's width
    assert matplotlib.image.imread(png).shape[1] >= figure.bbox.x1 * 0.9


def _extent(figure, artist):
    """Where an artist of a closed figure lies, in the figure's pixels (drawn on a fresh Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return artist.get_window_extent(canvas.get_renderer())


def test_a_one_column_figure_keeps_its_whole_caption_and_legend(tmp_path):
    """A one-column table's figure is narrow: its caption is wrapped to the figure and the legend
    below the axes is saved with it (it used to be cut at both edges)."""
    import matplotlib.image

    from bert_ablation.evaluation.plots import plot_table

    rows = ["BERT-Base", "BERT-Base 5x", "BERT-Base 10x", "No pretraining"]
    summary = pd.DataFrame({"row": rows, "column": "SST-2 (Acc)", "source": "finetune", "mean": [57.5, 64.1, 64.6, 66.6],
                            "sd": [1.7, 3.2, 0.9, 1.5], "paper": [92.7, 92.7, 92.7, float("nan")],
                            "pretrain_health": "learnt", "all_collapsed": False})
    caption = "Ablation over the pre-training tasks using the BERT-Base architecture, on a one-column table."
    png = tmp_path / "f.png"
    figure = plot_table(summary, caption, [str(png)])
    # the legend below the axes lies within the saved image (its columns fit the figure's width)
    legend = _extent(figure, figure.axes[0].get_legend())
    assert 0 <= legend.x0 < legend.x1 <= figure.bbox.x1 and len(figure.axes[0].get_legend().texts) == 5
    assert matplotlib.image.imread(png).shape[0] > figure.bbox.y1 * 0.9  # saved with it
    title = figure.texts[0].get_text()
    assert title.replace("\n", " ") == caption and "\n" in title
