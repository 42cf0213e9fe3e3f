"""Aggregate fine-tuning restarts into the paper's tables, with the paper's numbers beside ours.

For each cell (row = pretrained model + head, column = task metric) the grid point with the
best mean dev score is selected (the paper selects on dev), and its restarts are reported as
mean, sample standard deviation, best-of-restarts and count. Outputs: a tidy CSV, Markdown,
LaTeX, a figure and a provenance file recording which runs fill each cell.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .storage import atomic_file, read_json, write_json


def paper_reference() -> dict:
    return yaml.safe_load(resources.files(__package__).joinpath("data/paper_ablations.yaml").read_text())


def _percent(share: float) -> str:
    return f"{share * 100:.0f}"


def paper_rows(reference: dict, table: str) -> tuple[list[str], dict[str, list]]:
    """A paper table as (columns, label -> values). Tables 6 and 8 list unlabelled rows whose
    first three numbers describe the row: they are labelled "#L/#H/#A" and "MASK/SAME/RND" (%)."""
    spec = reference.get(table, {})
    rows, columns = spec.get("rows", {}), list(spec.get("columns", []))
    if isinstance(rows, dict):
        return columns, rows
    if table == "table8":
        return columns[3:], {"/".join(_percent(v) for v in row[:3]): row[3:] for row in rows}
    return columns[3:], {"/".join(str(v) for v in row[:3]): row[3:] for row in rows}


def paper_value(reference: dict, table: str, row: str, column: str, fraction: float | None = None) -> float:
    """The paper's number for a cell, NaN where the paper has none (e.g. a row we added).

    Figure 5 is matched by the fraction of pretraining done: our checkpoint at 40% of our
    steps is compared with the paper's point at 400k of its 1M steps, where one was read off.
    """
    if table == "figure5":
        spec = reference["figure5"]
        if row not in spec["series"] or fraction is None:
            return math.nan
        curve = spec["read_off_plot"][("mlm", "ltr")[spec["series"].index(row)]]
        for step_k, value in zip(spec["read_off_plot"]["steps_k"], curve):
            if abs(step_k / spec["read_off_plot"]["steps_k"][-1] - fraction) < 1e-9:
                return float(value)
        return math.nan
    columns, rows = paper_rows(reference, table)
    if row not in rows or column not in columns:
        return math.nan
    value = rows[row][columns.index(column)]
    return math.nan if value is None else float(value)


def load_runs(paths: list[str]) -> pd.DataFrame:
    """One row per (fine-tuning run, evaluated split, metric)."""
    records = []
    for path in paths:
        m = read_json(path)
        for split, scores in m["splits"].items():
            for metric, value in scores.items():
                records.append({
                    "ablation": m["ablation"], "step": Path(m["checkpoint"]).name, "task": m["task"],
                    "head": m["head"], "hp": m["hyperparameters"]["key"], "restart": m["restart"],
                    "split": split, "dev_split": m["dev_split"], "metric": metric, "value": value,
                    "init_seed": m["init_seed"], "data_seed": m["data_seed"],
                    "pretrain_spec_hash": m["pretrain_spec_hash"], "finetune_hash": m["finetune_hash"],
                    "checkpoint": m["checkpoint"], "path": path,
                })
    return pd.DataFrame.from_records(records)


def load_pretrained(paths: list[str]) -> dict[str, dict]:
    """Pretraining metrics.json by ablation name (with its path)."""
    return {m["ablation"]: {**m, "path": path} for path in paths for m in [read_json(path)]}


def _finetune_cell(runs: pd.DataFrame, cell: dict, name: str) -> tuple[str, pd.DataFrame, dict]:
    """The selected grid point's restarts for one cell. Grid points are compared on the task's
    dev split only, whichever split the cell reports (test data never selects anything)."""
    match = runs[(runs.ablation == cell["ablation"]) & (runs.step == cell["step"]) & (runs.task == cell["task"])
                 & (runs["head"] == cell["head"]) & (runs.metric == cell["metric"])] if len(runs) else runs
    if match.empty:
        raise ValueError(f"{name}: no fine-tuning results for cell {cell['row']} / {cell['column']}.")
    by_hp = match[match.split == match.dev_split].groupby("hp")["value"].mean()
    chosen = by_hp.idxmax()
    split = cell.get("split") or match.dev_split.iloc[0]
    selected = match[(match.hp == chosen) & (match.split == split)].sort_values("restart")
    return chosen, selected, {k: float(v) for k, v in by_hp.items()}


def _check_origin(cell: dict, run: dict, runs: pd.DataFrame, name: str) -> None:
    """Results made with another config (copied in, or kept by --rerun-triggers mtime) are
    refused rather than mixed into the table."""
    found = {run["spec_hash"]: run["path"]}
    if cell["source"] == "finetune" and len(runs):
        mine = runs[(runs.ablation == cell["ablation"]) & (runs.task == cell["task"])]
        found.update(zip(mine.pretrain_spec_hash, mine.path))
    stale = {h: path for h, path in found.items() if h != cell["spec_hash"]}
    if stale:
        h, path = next(iter(stale.items()))
        raise ValueError(f"{name}: {path} comes from a pretraining run of another config (spec hash {h}; this "
                         f"config's '{cell['ablation']}' is {cell['spec_hash']}). Rebuild it: delete "
                         f"results/pretrain/{cell['ablation']} and rerun (or snakemake --forcerun pretrain).")


def summarise(runs: pd.DataFrame, pretrained: dict[str, dict], cells: list[dict], name: str
              ) -> tuple[pd.DataFrame, list[dict]]:
    reference = paper_reference()
    rows, provenance = [], []
    for cell in cells:
        run = pretrained[cell["ablation"]]
        _check_origin(cell, run, runs, name)
        if cell["source"] == "pretrain":
            values, hp, split = np.array([float(run[cell["metric"]])]), None, "heldout"
            origin = {"selected_hp": None, "pretrain_spec_hash": [run["spec_hash"]], "finetune_hash": [],
                      "checkpoint": [], "restarts": [{"restart": None, "value": float(run[cell["metric"]]),
                                                       "metrics": run["path"]}]}
        else:
            hp, selected, grid_means = _finetune_cell(runs, cell, name)
            values, split = selected["value"].to_numpy(), selected.split.iloc[0]
            origin = {
                "selected_hp": hp, "grid_means": grid_means,
                "pretrain_spec_hash": sorted(set(selected.pretrain_spec_hash)),
                "finetune_hash": sorted(set(selected.finetune_hash)), "checkpoint": sorted(set(selected.checkpoint)),
                "restarts": [{"restart": int(r.restart), "init_seed": int(r.init_seed), "data_seed": int(r.data_seed),
                              "value": float(r.value), "metrics": r.path} for r in selected.itertuples()],
            }
        fraction = int(cell["column"]) / run["steps"] if name == "figure5" else None
        paper = paper_value(reference, name, cell["paper_row"], cell["column"], fraction)
        mean = float(values.mean())
        model = run["model"]
        rows.append({
            "table": name, "row": cell["row"], "column": cell["column"], "paper_row": cell["paper_row"],
            "ablation": cell["ablation"], "layers": model["layers"], "hidden": model["hidden"], "heads": model["heads"],
            "head": cell["head"], "step": cell["step"], "source": cell["source"], "task": cell["task"],
            "metric": cell["metric"], "split": split, "hp": hp, "n": len(values), "mean": mean,
            "sd": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
            "best": float(values.max()), "paper": paper, "diff": mean - paper,
        })
        provenance.append({"row": cell["row"], "column": cell["column"], "paper_row": cell["paper_row"],
                           "ablation": cell["ablation"], "head": cell["head"], "step": cell["step"],
                           "split": split, **origin})
    return pd.DataFrame(rows), provenance


def _fmt(value: float, digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _wide(summary: pd.DataFrame) -> tuple[list[str], list[str]]:
    return list(dict.fromkeys(summary["row"])), list(dict.fromkeys(summary["column"]))


def _ours(c) -> str:
    if c["source"] == "pretrain":
        return _fmt(c["mean"], 2)
    return f"{_fmt(c['mean'])} ± {_fmt(c['sd'])} ({_fmt(c['best'])})"


def _shape(c) -> str:
    return f"{c['layers']}/{c['hidden']}/{c['heads']}"


def to_markdown(summary: pd.DataFrame, caption: str, model_columns: bool = False) -> str:
    rows, columns = _wide(summary)
    cell = summary.set_index(["row", "column"])
    lines = [f"**{caption}** Ours: mean ± sd over restarts (best of restarts); paper in brackets.", ""]
    head = (["#L/#H/#A"] if model_columns else []) + columns
    lines.append("| | " + " | ".join(head) + " |")
    lines.append("|---|" + "---|" * len(head))
    for row in rows:
        first = cell.loc[(row, columns[0])]
        parts = [f"{_shape(first)} [{first['paper_row']}]"] if model_columns else []
        for column in columns:
            c = cell.loc[(row, column)]
            parts.append(f"{_ours(c)} [{_fmt(c['paper'], 2 if c['source'] == 'pretrain' else 1)}]")
        lines.append(f"| {row} | " + " | ".join(parts) + " |")
    finetuned = summary[summary.source == "finetune"]
    n = sorted(set(finetuned["n"]))
    lines += ["", f"Restarts per fine-tuned cell: {', '.join(map(str, n))}. Grid points are selected on dev; "
              "the selected point, split and provenance of every cell are in the CSV and provenance JSON."]
    return "\n".join(lines) + "\n"


def _tex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#"), ("_", r"\_")):
        text = text.replace(a, b)
    return text


def to_latex(summary: pd.DataFrame, caption: str, label: str) -> str:
    rows, columns = _wide(summary)
    cell = summary.set_index(["row", "column"])
    out = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "rr" * len(columns) + "}", r"\toprule"]
    out.append(" & " + " & ".join(rf"\multicolumn{{2}}{{c}}{{{_tex_escape(c)}}}" for c in columns) + r" \\")
    out.append(" & " + " & ".join(["ours", "paper"] * len(columns)) + r" \\")
    out.append(r"\midrule")
    for row in rows:
        values = []
        for column in columns:
            c = cell.loc[(row, column)]
            ours = _fmt(c["mean"], 2) if c["source"] == "pretrain" else rf"{_fmt(c['mean'])}$\pm${_fmt(c['sd'])}"
            values += [ours, _fmt(c["paper"], 2 if c["source"] == "pretrain" else 1)]
        out.append(_tex_escape(row) + " & " + " & ".join(values) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_tex_escape(caption)} Ours: mean $\pm$ sd over restarts.}}",
            rf"\label{{tab:{label}}}", r"\end{table}"]
    return "\n".join(out) + "\n"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, paths: list[str]) -> None:
    for path in paths:
        with atomic_file(path, "wb") as handle:
            fig.savefig(handle, format=Path(path).suffix.lstrip("."), dpi=120)
    _pyplot().close(fig)


def _bars(ax, summary: pd.DataFrame, ylabel: str, ylim=None) -> None:
    rows, columns = _wide(summary)
    cell = summary.set_index(["row", "column"])
    width = 0.8 / len(rows)
    x = np.arange(len(columns))
    for k, row in enumerate(rows):
        offset = x + (k - (len(rows) - 1) / 2) * width
        ax.bar(offset, [cell.loc[(row, c), "mean"] for c in columns], width,
               yerr=[np.nan_to_num(cell.loc[(row, c), "sd"]) for c in columns], capsize=2, label=row)
        ax.scatter(offset, [cell.loc[(row, c), "paper"] for c in columns], marker="_", s=200, color="black",
                   zorder=3, label="paper" if k == 0 else None)
    ax.set_xticks(x, columns)
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)


def plot_table(summary: pd.DataFrame, caption: str, paths: list[str]) -> None:
    """Bars of ours (± sd) per row and column, the paper's value as a black tick; pretraining
    metrics (perplexity) get a panel of their own, being on another scale."""
    plt = _pyplot()
    panels = [(source, summary[summary.source == source]) for source in ("finetune", "pretrain")]
    panels = [(source, part) for source, part in panels if len(part)]
    n_rows = summary["row"].nunique()
    widths = [part["column"].nunique() for _, part in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.4 + 1.6 * sum(widths), 4.8), squeeze=False,
                             gridspec_kw={"width_ratios": widths})
    for ax, (source, part) in zip(axes[0], panels):
        if source == "finetune":
            _bars(ax, part, "score (0-100)", (0, 100))
        else:
            _bars(ax, part, "held-out metric (ours vs paper)")
    fig.suptitle(caption, fontsize=10)
    # Below the axes: inside, the legend would hide the paper's ticks near the top.
    axes[0][0].legend(fontsize=7, ncol=min(n_rows + 1, 4), loc="upper center", bbox_to_anchor=(0.5, -0.1),
                      frameon=False)
    fig.tight_layout()
    save_figure(fig, paths)


def plot_steps(summary: pd.DataFrame, caption: str, paths: list[str], xlabel: str, ylabel: str) -> None:
    """Figure 5: score vs pretraining steps per series (mean ± sd over restarts), and the
    paper's curves (read off its figure) on the same fraction-of-training axis."""
    plt = _pyplot()
    reference = paper_reference().get("figure5", {})
    fig, (ours, paper) = plt.subplots(1, 2, figsize=(10, 4.2))
    for row in dict.fromkeys(summary["row"]):
        part = summary[summary.row == row]
        steps = part["column"].astype(int).to_numpy()
        ours.errorbar(steps, part["mean"], yerr=np.nan_to_num(part["sd"].to_numpy()), marker="o", capsize=3, label=row)
    ours.set_xlabel("pretraining steps (ours)")
    ours.set_ylabel(ylabel)
    ours.set_title("ours: mean ± sd over restarts", fontsize=9)
    ours.legend(fontsize=8)
    plot = reference.get("read_off_plot")
    if plot:
        for series, key in zip(reference["series"], ("mlm", "ltr")):
            paper.plot(plot["steps_k"], plot[key], marker="o", label=series)
        paper.legend(fontsize=8)
    paper.set_xlabel(reference.get("x", xlabel))
    paper.set_title("paper (read off its Figure 5)", fontsize=9)
    fig.suptitle(caption, fontsize=10)
    fig.tight_layout()
    save_figure(fig, paths)


def plot_loss_curves(logs: dict[str, str], paths: list[str]) -> None:
    """The pretraining loss of every ablation on one plot (from each run's step log)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for ablation, path in sorted(logs.items()):
        frame = pd.read_csv(path)
        if frame.empty:  # a run of 0 steps (no pretraining) has no curve
            continue
        ax.plot(frame["step"], frame["loss"], label=ablation, linewidth=1)
    ax.set_xlabel("pretraining step")
    ax.set_ylabel("training loss (LM + NSP where used)")
    ax.set_yscale("log")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Pretraining loss of every ablation", fontsize=10)
    fig.tight_layout()
    save_figure(fig, paths)


def write_table(cells: list[dict], name: str, metrics_paths: list[str], pretrain_paths: list[str],
                outputs: dict, kind: str = "table", model_columns: bool = False) -> pd.DataFrame:
    """Write outputs[csv|md|tex|provenance|png|pdf] for one table or figure (cells as
    config.table_cells gives them)."""
    reference = paper_reference().get(name, {})
    caption = reference.get("caption", name)
    summary, provenance = summarise(load_runs(metrics_paths), load_pretrained(pretrain_paths), cells, name)
    with atomic_file(outputs["csv"]) as handle:
        summary.to_csv(handle, index=False, float_format="%.4f")
    with atomic_file(outputs["md"]) as handle:
        handle.write(to_markdown(summary, caption, model_columns))
    with atomic_file(outputs["tex"]) as handle:
        handle.write(to_latex(summary, caption, name))
    figures = [outputs["png"], outputs["pdf"]]
    if kind == "figure":
        plot_steps(summary, caption, figures, reference.get("x", "steps"), reference.get("y", cells[0]["metric"]))
    else:
        plot_table(summary, caption, figures)
    write_json(outputs["provenance"], {"table": name, "caption": caption, "cells": provenance})
    return summary
