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


def paper_value(reference: dict, table: str, row: str, column: str) -> float:
    """The paper's number for a cell, NaN where the paper has none (e.g. a row we added)."""
    spec = reference.get(table, {})
    rows = spec.get("rows", {})
    if not isinstance(rows, dict) or row not in rows or column not in spec.get("columns", []):
        return math.nan
    value = rows[row][spec["columns"].index(column)]
    return math.nan if value is None else float(value)


def load_runs(paths: list[str]) -> pd.DataFrame:
    """One row per (fine-tuning run, dev metric)."""
    records = []
    for path in paths:
        m = read_json(path)
        for metric, value in m["dev"].items():
            records.append({
                "ablation": m["ablation"], "step": Path(m["checkpoint"]).name, "task": m["task"], "head": m["head"],
                "hp": m["hyperparameters"]["key"], "restart": m["restart"], "metric": metric, "value": value,
                "init_seed": m["init_seed"], "data_seed": m["data_seed"], "pretrain_spec_hash": m["pretrain_spec_hash"],
                "finetune_hash": m["finetune_hash"], "checkpoint": m["checkpoint"], "path": path,
            })
    return pd.DataFrame.from_records(records)


def summarise(runs: pd.DataFrame, cells: list[dict], table: str) -> tuple[pd.DataFrame, list[dict]]:
    reference = paper_reference()
    rows, provenance = [], []
    for cell in cells:
        match = runs[(runs.ablation == cell["ablation"]) & (runs.step == cell["step"]) & (runs.task == cell["task"])
                     & (runs["head"] == cell["head"]) & (runs.metric == cell["metric"])]
        if match.empty:
            raise ValueError(f"{table}: no fine-tuning results for cell {cell['row']} / {cell['column']}.")
        by_hp = match.groupby("hp")["value"].mean()
        selected = match[match.hp == by_hp.idxmax()].sort_values("restart")
        values = selected["value"].to_numpy()
        paper = paper_value(reference, table, cell["row"], cell["column"])
        mean = float(values.mean())
        rows.append({
            "table": table, "row": cell["row"], "column": cell["column"], "ablation": cell["ablation"],
            "head": cell["head"], "step": cell["step"], "task": cell["task"], "metric": cell["metric"],
            "hp": by_hp.idxmax(), "n": len(values), "mean": mean,
            "sd": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
            "best": float(values.max()), "paper": paper, "diff": mean - paper,
        })
        provenance.append({
            "row": cell["row"], "column": cell["column"], "selected_hp": by_hp.idxmax(),
            "grid_means": {k: float(v) for k, v in by_hp.items()},
            "pretrain_spec_hash": sorted(set(selected.pretrain_spec_hash)),
            "finetune_hash": sorted(set(selected.finetune_hash)), "checkpoint": sorted(set(selected.checkpoint)),
            "restarts": [{"restart": int(r.restart), "init_seed": int(r.init_seed), "data_seed": int(r.data_seed),
                          "value": float(r.value), "metrics": r.path} for r in selected.itertuples()],
        })
    return pd.DataFrame(rows), provenance


def _fmt(value: float, digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _wide(summary: pd.DataFrame) -> tuple[list[str], list[str]]:
    return list(dict.fromkeys(summary["row"])), list(dict.fromkeys(summary["column"]))


def to_markdown(summary: pd.DataFrame, caption: str) -> str:
    rows, columns = _wide(summary)
    cell = summary.set_index(["row", "column"])
    lines = [f"**{caption}** Ours: dev mean ± sd over restarts (best of restarts); paper in brackets.", ""]
    lines.append("| | " + " | ".join(columns) + " |")
    lines.append("|---|" + "---|" * len(columns))
    for row in rows:
        parts = []
        for column in columns:
            c = cell.loc[(row, column)]
            parts.append(f"{_fmt(c['mean'])} ± {_fmt(c['sd'])} ({_fmt(c['best'])}) [{_fmt(c['paper'])}]")
        lines.append(f"| {row} | " + " | ".join(parts) + " |")
    n = sorted(set(summary["n"]))
    lines += ["", f"Restarts per cell: {', '.join(map(str, n))}. Selected grid point per cell: see the CSV."]
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
            values += [rf"{_fmt(c['mean'])}$\pm${_fmt(c['sd'])}", _fmt(c["paper"])]
        out.append(_tex_escape(row) + " & " + " & ".join(values) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_tex_escape(caption)} Ours: mean $\pm$ sd over restarts.}}",
            rf"\label{{tab:{label}}}", r"\end{table}"]
    return "\n".join(out) + "\n"


def plot(summary: pd.DataFrame, caption: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, columns = _wide(summary)
    cell = summary.set_index(["row", "column"])
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(columns), 4.5))
    x = np.arange(len(columns))
    for k, row in enumerate(rows):
        means = [cell.loc[(row, c), "mean"] for c in columns]
        sds = [np.nan_to_num(cell.loc[(row, c), "sd"]) for c in columns]
        papers = [cell.loc[(row, c), "paper"] for c in columns]
        ax.bar(x + (k - (len(rows) - 1) / 2) * width, means, width, yerr=sds, capsize=2, label=row)
        ax.scatter(x + (k - (len(rows) - 1) / 2) * width, papers, marker="_", s=200, color="black",
                   zorder=3, label="paper" if k == 0 else None)
    ax.set_xticks(x, columns)
    ax.set_ylim(0, 100)
    ax.set_ylabel("dev score (0-100)")
    ax.set_title(caption, fontsize=10)
    # Below the axes: inside, it would hide the paper's markers near the top.
    ax.legend(fontsize=8, ncol=len(rows) + 1, loc="upper center", bbox_to_anchor=(0.5, -0.08), frameon=False)
    fig.tight_layout()
    with atomic_file(path, "wb") as handle:
        fig.savefig(handle, format=Path(path).suffix.lstrip(".") or "png", dpi=120)
    plt.close(fig)


def write_table(cells: list[dict], table: str, metrics_paths: list[str], outputs: dict) -> pd.DataFrame:
    """Write outputs[csv|md|tex|png|provenance] for one table (cells as config.table_cells gives them)."""
    caption = paper_reference().get(table, {}).get("caption", table)
    summary, provenance = summarise(load_runs(metrics_paths), cells, table)
    with atomic_file(outputs["csv"]) as handle:
        summary.to_csv(handle, index=False, float_format="%.4f")
    with atomic_file(outputs["md"]) as handle:
        handle.write(to_markdown(summary, caption))
    with atomic_file(outputs["tex"]) as handle:
        handle.write(to_latex(summary, caption, table))
    plot(summary, caption, outputs["png"])
    write_json(outputs["provenance"], {"table": table, "caption": caption, "cells": provenance})
    return summary
