"""Aggregate fine-tuning restarts into the paper's tables, with the paper's numbers beside ours.

For each cell (row = pretrained model + head, column = task metric) the grid point with the
best mean dev score is selected (the paper selects on dev), and its restarts are reported as
mean, sample standard deviation, best-of-restarts and count. Outputs: a tidy CSV, Markdown,
LaTeX, a figure and a provenance file recording which runs fill each cell.

A restart whose metric is NaN (or missing) has *failed*: it is counted, not dropped. The cell
reports ``n`` restarts of which ``failed`` failed, the statistics are over the others, the
Markdown and LaTeX cells say "k/n failed", and the log names each failed metrics.json.

Two kinds of cell measure nothing and say so in the table itself (a CSV column, a Markdown and
LaTeX mark, a hatched bar): a row whose pretraining run did not learn (its metrics.json
``health``: plateau, diverged or collapsed; ``pretrain_health``, "not learnt"), and a fine-tuned
cell whose every restart collapsed to one class even after its retries (``all_collapsed``).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..plan import Cell
from ..storage import atomic_file, canonical_json, read_json, write_json
from . import health, paper
from .plots import plot_steps, plot_table, row_label, rows_and_columns

log = logging.getLogger(__name__)


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
                    "split": split, "dev_split": m["dev_split"], "metric": metric,
                    "value": math.nan if value is None else float(value),
                    "init_seed": m["init_seed"], "data_seed": m["data_seed"],
                    "pretrain_spec_hash": m["pretrain_spec_hash"], "finetune_hash": m["finetune_hash"],
                    "checkpoint": m["checkpoint"], "path": path,
                    "inputs": canonical_json(m.get("inputs", {})),
                    "collapsed_to": m.get("collapsed_to"),
                    # a constant classifier's score on this split (classification tasks): claims' chance level
                    "chance": ((m.get("chance") or {}).get(split) or {}).get(metric),
                    "collapse_retry": canonical_json(m.get("collapse_retry") or {}),
                })
    return pd.DataFrame.from_records(records)


def load_pretrained(paths: list[str]) -> dict[str, dict]:
    """Pretraining metrics.json by ablation name (with its path)."""
    return {m["ablation"]: {**m, "path": path} for path in paths for m in [read_json(path)]}


def _failed(values) -> np.ndarray:
    """Which restarts failed: a NaN (or infinite) metric, which no mean may silently skip."""
    return ~np.isfinite(np.asarray(values, dtype=float))


def _finetune_cell(runs: pd.DataFrame, cell: Cell, name: str) -> tuple[str, pd.DataFrame, dict, dict]:
    """The selected grid point's restarts for one cell, every pretraining seed's, in (seed, restart)
    order. Grid points are compared on the task's dev split only, whichever split the cell reports
    (test data never selects anything), and over all seeds together: one point per cell, as one
    protocol per row, not a point picked per seed.

    Fewer failed dev restarts come first, then the higher mean of the others: a NaN never
    helps a grid point by leaving its mean over fewer, luckier restarts.
    """
    seed_index = {run: k for k, (run, _) in enumerate(cell.seed_runs())}
    match = runs[(runs.ablation.isin(seed_index)) & (runs.step == cell.step) & (runs.task == cell.task)
                 & (runs["head"] == cell.head) & (runs.metric == cell.metric)] if len(runs) else runs
    if match.empty:
        raise ValueError(f"{name}: no fine-tuning results for cell {cell.row} / {cell.column}.")
    match = match.assign(seed_index=match.ablation.map(seed_index))
    dev = match[match.split == match.dev_split]
    by_hp = dev.groupby("hp")["value"].mean()  # pandas skips NaN: the mean of the finished restarts
    failed = dev.assign(failed=_failed(dev["value"])).groupby("hp")["failed"].sum()
    # min() keeps the first of equals, as idxmax did; a point with every restart failed sorts last.
    chosen = min(by_hp.index, key=lambda hp: (failed[hp], -by_hp[hp] if math.isfinite(by_hp[hp]) else math.inf))
    split = cell.split or match.dev_split.iloc[0]
    selected = match[(match.hp == chosen) & (match.split == split)].sort_values(["seed_index", "restart"])
    return chosen, selected, {k: _json_value(v) for k, v in by_hp.items()}, {k: int(v) for k, v in failed.items()}


def _chance(selected: pd.DataFrame) -> float | None:
    values = [float(v) for v in selected["chance"] if v is not None and math.isfinite(float(v))]
    return values[0] if values else None


def _check_origin(cell: Cell, run_name: str, run_hash: str, run: dict, runs: pd.DataFrame, name: str) -> None:
    """Results made with another config (copied in, or kept by --rerun-triggers mtime) are
    refused rather than mixed into the table."""
    found = {run["spec_hash"]: run["path"]}
    if cell.source == "finetune" and len(runs):
        mine = runs[(runs.ablation == run_name) & (runs.task == cell.task)]
        found.update(zip(mine.pretrain_spec_hash, mine.path))
    stale = {h: path for h, path in found.items() if h != run_hash}
    if stale:
        h, path = next(iter(stale.items()))
        raise ValueError(f"{name}: {path} comes from a pretraining run of another config (spec hash {h}; this "
                         f"config's '{run_name}' is {run_hash}). Rebuild it: delete "
                         f"results/pretrain/{run_name} and rerun (or snakemake --forcerun pretrain).")


def _seed_record(index: int, run_name: str, run: dict) -> dict:
    """What claims' preconditions read about one pretraining run of a cell (mechanisms.CHECKS)."""
    health_record = run.get("health") or {}
    return {"run": run_name, "seed_index": index, "seeds": run.get("seeds"),
            "health": health.status_of(run.get("health")), "not_learnt": health.not_learnt(run.get("health")),
            **{key: run.get(key) for key in ("objective", "heldout_nsp_accuracy", "heldout_perplexity",
                                             "unigram_perplexity", "last_layer_cosine")},
            "perplexity_ratio": health_record.get("perplexity_ratio")}


def seed_spread(values: np.ndarray, seed_index: np.ndarray) -> tuple[float, float, int]:
    """(sd of the per-seed means, pooled sd of restarts within a seed, seeds): the pretraining
    draw's spread and the fine-tuning draw's, side by side (NaN where a level has one value)."""
    values, seed_index = np.asarray(values, float), np.asarray(seed_index)
    ok = np.isfinite(values)
    groups = [values[ok & (seed_index == k)] for k in dict.fromkeys(seed_index[ok].tolist())]
    means = np.array([g.mean() for g in groups])
    sd_seed = float(means.std(ddof=1)) if len(means) > 1 else math.nan
    within = sum(((g - g.mean()) ** 2).sum() for g in groups)
    dof = sum(len(g) - 1 for g in groups)
    return sd_seed, float(math.sqrt(within / dof)) if dof > 0 else math.nan, len(groups)


def summarise(runs: pd.DataFrame, pretrained: dict[str, dict], cells: list[Cell], name: str,
              paper_table: str | None = None, steps_columns: bool = False) -> tuple[pd.DataFrame, list[dict]]:
    """``paper_table``: the paper's table whose numbers stand beside the cells (default ``name``).
    ``steps_columns``: the columns are pretraining steps (a figure), matched to the paper's by the
    fraction of pretraining done."""
    reference = paper.paper_table(paper_table or name)
    rows, provenance = [], []
    for cell in cells:
        seed_runs = cell.seed_runs()
        for run_name, run_hash in seed_runs:
            _check_origin(cell, run_name, run_hash, pretrained[run_name], runs, name)
        run = pretrained[seed_runs[0][0]]  # seed 0: the shape and steps every seed shares
        seed_records = [_seed_record(k, r, pretrained[r]) for k, (r, _) in enumerate(seed_runs)]
        collapsed, retried = [], 0
        if cell.source == "pretrain":
            # one value per seed; a KeyError names a wrong metric; null/NaN is a failed run
            values = np.array([math.nan if pretrained[r][cell.metric] is None else float(pretrained[r][cell.metric])
                               for r, _ in seed_runs])
            seed_index, hp, split = np.arange(len(seed_runs)), None, "heldout"
            origin = {"selected_hp": None, "pretrain_spec_hash": [pretrained[r]["spec_hash"] for r, _ in seed_runs],
                      "finetune_hash": [], "checkpoint": [],
                      "restarts": [{"restart": None, "pretraining_run": r, "pretrain_seed": k,
                                    "value": _json_value(v), "failed": bool(_failed([v])[0]),
                                    "metrics": pretrained[r]["path"]}
                                   for k, ((r, _), v) in enumerate(zip(seed_runs, values))]}
            paths = [pretrained[r]["path"] for r, _ in seed_runs]
        else:
            hp, selected, grid_means, grid_failed = _finetune_cell(runs, cell, name)
            values, split = selected["value"].to_numpy(dtype=float), selected.split.iloc[0]
            seed_index = selected["seed_index"].to_numpy()
            paths = list(selected.path)
            origin = {
                "selected_hp": hp, "grid_means": grid_means, "grid_failed": grid_failed,
                "pretrain_spec_hash": sorted(set(selected.pretrain_spec_hash)),
                "finetune_hash": sorted(set(selected.finetune_hash)), "checkpoint": sorted(set(selected.checkpoint)),
                "inputs": [json.loads(x) for x in sorted(set(selected.inputs))],
                "pretrain_inputs": run.get("inputs") or run.get("digests"),
                "chance": _chance(selected),
                "restarts": [{"restart": int(r.restart), "pretraining_run": r.ablation, "pretrain_seed": int(r.seed_index),
                              "init_seed": int(r.init_seed), "data_seed": int(r.data_seed),
                              "value": _json_value(r.value), "failed": not math.isfinite(r.value),
                              "collapsed_to": r.collapsed_to if isinstance(r.collapsed_to, str) else None,
                              "collapse_retry": json.loads(r.collapse_retry) or None, "metrics": r.path}
                             for r in selected.itertuples()],
            }
            collapsed = [r for r in selected.itertuples() if isinstance(r.collapsed_to, str)]
            # restarts trained again at a lower rate after a collapse (finetune.collapse_retry)
            retried = sum(json.loads(r.collapse_retry).get("retries", 0) > 0 for r in selected.itertuples())
            for r in collapsed:  # a constant classifier: chance, whatever the encoder learnt
                log.warning("%s: cell %s / %s: restart %d collapsed to predicting '%s' for every dev example "
                            "(%s = %.1f); %s", name, cell.row, cell.column, r.restart, r.collapsed_to,
                            cell.metric, r.value, r.path)
            for point, k in grid_failed.items():
                if k:
                    log.warning("%s: cell %s / %s: grid point %s has %d failed dev restart(s) (NaN %s); %s.", name,
                                cell.row, cell.column, point, k, cell.metric,
                                "selected all the same: no point has fewer" if point == hp
                                else "ranked behind points with fewer failures")
        # a cell is as learnt as its worst seed: a recipe that fails at one seed in three is no recipe
        failing = [(r["run"], r["not_learnt"]) for r in seed_records if r["not_learnt"]]
        not_learnt = ("; ".join(f"{r}: {why}" for r, why in failing) if len(seed_runs) > 1 else failing[0][1]) \
            if failing else None
        if not_learnt:
            log.warning("%s: cell %s / %s: pretraining run(s) %s did not learn (%s); the cell is marked 'not learnt' "
                        "and claims leave it out.", name, cell.row, cell.column, ", ".join(r for r, _ in failing),
                        not_learnt)
        status = next((r["health"] for r in seed_records if r["not_learnt"]), seed_records[0]["health"])
        all_collapsed = bool(collapsed) and len(collapsed) == len(values)
        if all_collapsed:
            log.warning("%s: cell %s / %s: all %d restarts collapsed to one class, retries included: a constant "
                        "classifier's score, marked 'all collapsed'.", name, cell.row, cell.column, len(values))
        failed = _failed(values)
        for path, restart_failed in zip(paths, failed):
            if restart_failed:
                log.warning("%s: cell %s / %s: failed restart, %s is NaN in %s (counted as failed, left out of "
                            "mean/sd/best).", name, cell.row, cell.column, cell.metric, path)
        ok = values[~failed]
        fraction = int(cell.column) / run["steps"] if steps_columns else None
        paper_value = math.nan if reference is None else reference.value(cell.paper_row, cell.column, fraction)
        mean = float(ok.mean()) if len(ok) else math.nan
        model = run["model"]
        rows.append({
            "table": name, "row": cell.row, "column": cell.column, "paper_row": cell.paper_row,
            "ablation": cell.ablation, "layers": model["layers"], "hidden": model["hidden"], "heads": model["heads"],
            "head": cell.head, "step": cell.step, "source": cell.source, "task": cell.task,
            "metric": cell.metric, "split": split, "hp": hp, "n": len(values), "failed": int(failed.sum()),
            "collapsed": len(collapsed), "all_collapsed": all_collapsed,
            "retried": retried,
            "pretrain_health": status, "not_learnt": not_learnt or "",
            "mean": mean, "sd": float(ok.std(ddof=1)) if len(ok) > 1 else math.nan,
            **dict(zip(("sd_seed", "sd_restart", "seeds"), seed_spread(values, seed_index))),
            "best": float(ok.max()) if len(ok) else math.nan, "paper": paper_value, "diff": mean - paper_value,
        })
        provenance.append({"row": cell.row, "column": cell.column, "paper_row": cell.paper_row,
                           "ablation": cell.ablation, "head": cell.head, "step": cell.step,
                           "split": split, "pretrain_health": status, "seed_runs": seed_records,
                           "not_learnt": not_learnt, "all_collapsed": all_collapsed, **origin})
    return pd.DataFrame(rows), provenance


def _json_value(value: float) -> float | None:
    # null, not NaN: provenance stays standard JSON; "failed" says why the value is absent.
    return float(value) if math.isfinite(value) else None


def _fmt(value: float, digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _failures(c) -> str:
    return f", {c['failed']}/{c['n']} failed" if c["failed"] else ""


def _collapses(c) -> str:
    return f", all {c['n']} collapsed" if c.get("all_collapsed") else ""


def _seeded(c) -> bool:
    return c.get("seeds", 1) > 1


def _ours(c) -> str:
    """mean ± sd (best); over several pretraining seeds, the seed-level spread (sd of the seed
    means, "s") and the restart-level one (pooled sd within a seed, "r") side by side."""
    if c["source"] == "pretrain":
        spread = f" ± {_fmt(c['sd_seed'], 2)} s" if _seeded(c) else ""
        return _fmt(c["mean"], 2) + spread + _failures(c)
    if _seeded(c):
        restarts = f" ± {_fmt(c['sd_restart'])} r" if math.isfinite(c["sd_restart"]) else ""
        return f"{_fmt(c['mean'])} ± {_fmt(c['sd_seed'])} s{restarts} ({_fmt(c['best'])}){_failures(c)}{_collapses(c)}"
    return f"{_fmt(c['mean'])} ± {_fmt(c['sd'])} ({_fmt(c['best'])}){_failures(c)}{_collapses(c)}"


def _spread_caption(summary: pd.DataFrame) -> str:
    if "seeds" not in summary or summary["seeds"].max() <= 1:
        return "Ours: mean ± sd over restarts (best of restarts)"
    seeds = int(summary["seeds"].max())
    return (f"Ours: mean over {seeds} pretraining seeds × their restarts, ± s: sd of the seed means (the "
            "pretraining draw), ± r: pooled sd of restarts within a seed (the fine-tuning draw); best in parentheses")


def _marks_note(summary: pd.DataFrame) -> list[str]:
    """The Markdown paragraphs explaining the 'not learnt' and 'all collapsed' marks in this table."""
    lines = []
    not_learnt = summary[summary["not_learnt"] != ""].drop_duplicates("row")
    if len(not_learnt):
        lines += ["", "\"not learnt\": the row's pretraining run did not learn (health check in its metrics.json; "
                  "claims leave it out): " + "; ".join(f"{r.row}: {r.not_learnt}" for r in not_learnt.itertuples())
                  + "."]
    if summary["all_collapsed"].any():
        lines += ["", "\"all n collapsed\": every restart of the cell predicts one class for every dev example, "
                  "even after its retries at a lower rate (finetune.collapse_retry): a constant classifier's score, "
                  "not a result."]
    return lines


def _shape(c) -> str:
    return f"{c['layers']}/{c['hidden']}/{c['heads']}"


def to_markdown(summary: pd.DataFrame, caption: str, model_columns: bool = False) -> str:
    rows, columns = rows_and_columns(summary)
    cell = summary.set_index(["row", "column"])
    lines = [f"**{caption}** {_spread_caption(summary)}; paper in brackets.", ""]
    head = (["#L/#H/#A"] if model_columns else []) + columns
    lines.append("| | " + " | ".join(head) + " |")
    lines.append("|---|" + "---|" * len(head))
    for row in rows:
        first = cell.loc[(row, columns[0])]
        parts = [f"{_shape(first)} [{first['paper_row']}]"] if model_columns else []
        for column in columns:
            c = cell.loc[(row, column)]
            parts.append(f"{_ours(c)} [{_fmt(c['paper'], 2 if c['source'] == 'pretrain' else 1)}]")
        lines.append(f"| {row_label(summary, row)} | " + " | ".join(parts) + " |")
    finetuned = summary[summary.source == "finetune"]
    n = sorted(set(finetuned["n"]))
    lines += ["", f"Restarts per fine-tuned cell: {', '.join(map(str, n))}. Grid points are selected on dev; "
              "the selected point, split and provenance of every cell are in the CSV and provenance JSON."]
    if summary["failed"].any():
        lines += ["", f"\"k/n failed\": k of the cell's n restarts failed (NaN metric; {int(summary['failed'].sum())} "
                  "in this table, each named in the job's log and the provenance JSON); mean, sd and best are "
                  "over the others. Grid points with fewer failed dev restarts are preferred."]
    lines += _marks_note(summary)
    return "\n".join(lines) + "\n"


def _tex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#"), ("_", r"\_")):
        text = text.replace(a, b)
    return text


def to_latex(summary: pd.DataFrame, caption: str, label: str) -> str:
    rows, columns = rows_and_columns(summary)
    cell = summary.set_index(["row", "column"])
    out = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "rr" * len(columns) + "}", r"\toprule"]
    out.append(" & " + " & ".join(rf"\multicolumn{{2}}{{c}}{{{_tex_escape(c)}}}" for c in columns) + r" \\")
    out.append(" & " + " & ".join(["ours", "paper"] * len(columns)) + r" \\")
    out.append(r"\midrule")
    for row in rows:
        values = []
        for column in columns:
            c = cell.loc[(row, column)]
            if _seeded(c):  # the seed-level spread, then the restart-level one
                digits = 2 if c["source"] == "pretrain" else 1
                ours = rf"{_fmt(c['mean'], digits)}$\pm${_fmt(c['sd_seed'], digits)}$^s$"
                ours += rf"$\pm${_fmt(c['sd_restart'])}$^r$" if c["source"] != "pretrain" else ""
            else:
                ours = _fmt(c["mean"], 2) if c["source"] == "pretrain" else rf"{_fmt(c['mean'])}$\pm${_fmt(c['sd'])}"
            if c["failed"]:
                ours += rf" ({c['failed']}/{c['n']} failed)"
            if c.get("all_collapsed"):
                ours += " (all collapsed)"
            values += [ours, _fmt(c["paper"], 2 if c["source"] == "pretrain" else 1)]
        out.append(_tex_escape(row_label(summary, row)) + " & " + " & ".join(values) + r" \\")
    notes = ""
    if (summary["not_learnt"] != "").any():
        notes += " Not learnt: the row's pretraining run did not learn (plateau, diverged or collapsed); claims leave it out."
    if summary["all_collapsed"].any():
        notes += " All collapsed: every restart predicts one class, retries included."
    spread = (r"Ours: mean $\pm$ sd over restarts" if "seeds" not in summary or summary["seeds"].max() <= 1 else
              rf"Ours: mean over {int(summary['seeds'].max())} pretraining seeds, $\pm^s$ sd of the seed means, "
              r"$\pm^r$ pooled sd of restarts within a seed")
    out += [r"\bottomrule", r"\end{tabular}",
            rf"\caption{{{_tex_escape(caption)} {spread}.{_tex_escape(notes)}}}",
            rf"\label{{tab:{label}}}", r"\end{table}"]
    return "\n".join(out) + "\n"


def write_table(cells: list[Cell], name: str, metrics_paths: list[str], pretrain_paths: list[str],
                outputs: dict, kind: str = "table", model_columns: bool = False,
                paper_table: str | None = None) -> pd.DataFrame:
    """Write outputs[csv|md|tex|provenance|png|pdf] for one table or figure (cells as
    plan.table_cells gives them)."""
    reference = paper.paper_table(paper_table or name)
    caption = reference.caption if reference is not None else name
    summary, provenance = summarise(load_runs(metrics_paths), load_pretrained(pretrain_paths), cells, name,
                                    paper_table, steps_columns=kind == "figure")
    with atomic_file(outputs["csv"]) as handle:
        summary.to_csv(handle, index=False, float_format="%.4f")
    with atomic_file(outputs["md"]) as handle:
        handle.write(to_markdown(summary, caption, model_columns))
    with atomic_file(outputs["tex"]) as handle:
        handle.write(to_latex(summary, caption, name))
    figures = [outputs["png"], outputs["pdf"]]
    if kind == "figure":
        plot_steps(summary, caption, figures, "steps", reference.y if reference is not None and reference.y
                   else cells[0].metric, reference)
    else:
        plot_table(summary, caption, figures)
    write_json(outputs["provenance"], {"table": name, "caption": caption, "cells": provenance})
    return summary
