"""Every figure: the tables' bars and step curves, the pretraining loss, the fine-tuning curves.

matplotlib is loaded on the first figure, not on import, so that reading or aggregating results
(tables.load_runs, a provenance check) does not pay for it; every figure gets pyplot from ``_pyplot``
(the Agg backend: files only, no display) and is written by ``save_figure``.

The row helpers below name a summary frame's rows (tables.summarise) the way every output
shows them, "not learnt" marked; the Markdown and LaTeX of tables.py use them too.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from ..plan import split_run
from ..storage import atomic_file, read_json
from . import health, paper


def rows_and_columns(summary: pd.DataFrame) -> tuple[list[str], list[str]]:
    return list(dict.fromkeys(summary["row"])), list(dict.fromkeys(summary["column"]))


def row_status(summary: pd.DataFrame, row: str) -> str | None:
    """The pretraining health status of a row whose run did not learn, else None."""
    statuses = set(summary.loc[summary["row"] == row, "pretrain_health"]) & set(health.NOT_LEARNT)
    return ", ".join(sorted(statuses)) or None


def row_label(summary: pd.DataFrame, row: str) -> str:
    status = row_status(summary, row)
    return f"{row} (not learnt: {status})" if status else row


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, paths: list[str]) -> None:
    for path in paths:
        with atomic_file(path, "wb") as handle:
            # tight: a legend below the axes or a long title is part of the figure, not cut at its edge
            fig.savefig(handle, format=Path(path).suffix.lstrip("."), dpi=120, bbox_inches="tight")
    _pyplot().close(fig)


def _bars(ax, summary: pd.DataFrame, ylabel: str, ylim=None) -> None:
    rows, columns = rows_and_columns(summary)
    cell = summary.set_index(["row", "column"])
    width = 0.8 / len(rows)
    x = np.arange(len(columns))
    for k, row in enumerate(rows):
        offset = x + (k - (len(rows) - 1) / 2) * width
        not_learnt = row_status(summary, row) is not None
        bars = ax.bar(offset, [cell.loc[(row, c), "mean"] for c in columns], width,
                      yerr=[np.nan_to_num(cell.loc[(row, c), "sd"]) for c in columns], capsize=2,
                      label=row_label(summary, row), hatch="//" if not_learnt else None)
        for bar, column in zip(bars, columns):  # a constant classifier's bar: crossed
            if cell.loc[(row, column)].get("all_collapsed"):
                bar.set_hatch("xx")
                ax.annotate("all collapsed", (bar.get_x() + bar.get_width() / 2, bar.get_height()), fontsize=6,
                            rotation=90, ha="center", va="bottom")
        ax.scatter(offset, [cell.loc[(row, c), "paper"] for c in columns], marker="_", s=200, color="black",
                   zorder=3, label="paper" if k == 0 else None)
    ax.set_xticks(x, columns)
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)


def plot_table(summary: pd.DataFrame, caption: str, paths: list[str]):
    """Bars of ours (± sd) per row and column, the paper's value as a black tick; pretraining
    metrics (perplexity) get a panel of their own, being on another scale. Returns the figure
    (closed, for inspection)."""
    plt = _pyplot()
    panels = [(source, summary[summary.source == source]) for source in ("finetune", "pretrain")]
    panels = [(source, part) for source, part in panels if len(part)]
    n_rows = summary["row"].nunique()
    widths = [part["column"].nunique() for _, part in panels]
    # a column group holds one bar per row: Table 7's 7 rows in 2 columns need more than 1.6 inches a group
    group_inches = max(1.6, 0.3 * n_rows)
    fig, axes = plt.subplots(1, len(panels), figsize=(2.4 + group_inches * sum(widths), 4.8), squeeze=False,
                             gridspec_kw={"width_ratios": widths})
    for ax, (source, part) in zip(axes[0], panels):
        if source == "finetune":
            _bars(ax, part, "score (0-100)", (0, 100))
        else:
            _bars(ax, part, "held-out metric (ours vs paper)")
    # wrapped to the figure's width (~13 characters an inch at this size): a one-column table's
    # figure is narrow, and its caption ran off both edges
    fig.suptitle(textwrap.fill(caption, max(30, int(fig.get_figwidth() * 13)), break_on_hyphens=False), fontsize=10)
    # Below the axes: inside, the legend would hide the paper's ticks near the top.
    # As many legend columns as fit the figure's width (~0.055 inch a character at size 7): a legend
    # wider than the figure made tight_layout squeeze the axes to a sliver (Table 7's long rows).
    label_inches = 0.4 + 0.055 * max(len(str(label)) for label in axes[0][0].get_legend_handles_labels()[1])
    fit = max(1, int(fig.get_figwidth() // label_inches))
    axes[0][0].legend(fontsize=7, ncol=min(n_rows + 1, 4, fit), loc="upper center",
                      bbox_to_anchor=(0.5, -0.1), frameon=False)
    fig.tight_layout()
    save_figure(fig, paths)
    return fig


def plot_steps(summary: pd.DataFrame, caption: str, paths: list[str], xlabel: str, ylabel: str,
               reference: paper.PaperTable | None = None) -> None:
    """A score vs pretraining steps per series (mean ± sd over every run: its seeds × restarts), and the paper's
    curves (Figure 5: read off its figure) beside them."""
    plt = _pyplot()
    fig, (ours, theirs) = plt.subplots(1, 2, figsize=(10, 4.2))
    for row in dict.fromkeys(summary["row"]):
        part = summary[summary.row == row]
        steps = part["column"].astype(int).to_numpy()
        ours.errorbar(steps, part["mean"], yerr=np.nan_to_num(part["sd"].to_numpy()), marker="o", capsize=3,
                      label=row_label(summary, row), linestyle="--" if row_status(summary, row) else "-")
    ours.set_xlabel("pretraining steps (ours)")
    ours.set_ylabel(ylabel)
    seeds = int(summary["seeds"].max()) if "seeds" in summary and summary["seeds"].notna().any() else 1
    ours.set_title("ours: mean ± sd over restarts" if seeds <= 1 else
                   f"ours: mean ± sd over every run ({seeds} pretraining seeds × restarts)", fontsize=9)
    ours.legend(fontsize=8)
    if reference is not None:
        steps = [int(c) for c in reference.columns]
        for series, values in reference.rows.items():
            theirs.plot(steps, values, marker="o", label=series)
        theirs.legend(fontsize=8)
    theirs.set_xlabel(reference.x if reference is not None and reference.x else xlabel)
    theirs.set_title("paper (read off its figure)" if reference is not None else "paper: none",
                     fontsize=9)
    fig.suptitle(caption, fontsize=10)
    fig.tight_layout()
    save_figure(fig, paths)


# Panel titles and y labels per objective; a local copy (objectives.py would import torch
# into every table job). An objective not listed is titled by its name.
_LOSS_PANELS = {
    "mlm_nsp": ("MLM + NSP", "training loss (masked LM + next sentence)"),
    "mlm": ("MLM, no NSP", "training loss (masked LM)"),
    "ltr": ("LTR, next token", "training loss (next-token LM)"),
}


def _line_styles(n: int) -> list[tuple]:
    """n (colour, line style) pairs, every colour different: tab10, tab20 beyond 10 runs, an
    evenly sampled colormap beyond 20; the styles cycle on top, for print and colour blindness."""
    from matplotlib import colormaps

    if n <= 10:
        colours = [colormaps["tab10"](i) for i in range(n)]
    elif n <= 20:  # tab20's dark shades first: adjacent runs get different hues, not light/dark pairs
        colours = [colormaps["tab20"](i) for i in [*range(0, 20, 2), *range(1, 20, 2)][:n]]
    else:
        colours = [colormaps["turbo"](x) for x in np.linspace(0.05, 0.95, n)]
    styles = ["-", "--", "-.", ":"]
    return [(colour, styles[i % len(styles)]) for i, colour in enumerate(colours)]


def plot_loss_curves(logs: dict[str, str], metrics: dict[str, str], paths: list[str]):
    """The pretraining loss of every ablation (from each run's step log), one panel per
    objective: the losses of different objectives are on different scales (LTR predicts every
    next token, MLM 15% of them, MLM+NSP adds a sentence-pair loss) and must not share an axis.
    Each run's held-out perplexity (masked-LM or next-token, as its panel says) is in its
    legend label. Returns the figure (closed, for inspection)."""
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter

    # One entry per ablation: its pretraining seeds (runs <ablation>.seed<k>) share its colour and
    # style, and the label lists every seed's perplexity.
    by_ablation: dict[str, list[str]] = {}
    for run in sorted(logs, key=split_run):
        by_ablation.setdefault(split_run(run)[0], []).append(run)
    runs, undrawn = {}, []
    for ablation, seed_runs in by_ablation.items():
        seed_metrics = [read_json(metrics[run]) for run in seed_runs]
        ppls = [m.get("heldout_perplexity") for m in seed_metrics]
        shown = " / ".join(f"{p:.1f}" if p is not None and math.isfinite(p) else "failed" for p in ppls)
        label = f"{ablation}: ppl {shown}" + (f" ({len(seed_runs)} seeds)" if len(seed_runs) > 1 else "")
        statuses = sorted({m["health"]["status"] for m in seed_metrics if health.not_learnt(m.get("health"))})
        if statuses:
            label += f" (not learnt: {', '.join(statuses)})"
        frames = [pd.read_csv(logs[run]) for run in seed_runs]
        if all(frame.empty for frame in frames):  # a run of 0 steps (no pretraining) has no curve
            undrawn.append(label)
            continue
        m = seed_metrics[0]
        runs.setdefault(m["objective"], []).append((ablation, label, frames, m.get("heldout_perplexity_kind", "")))
    order = [o for o in _LOSS_PANELS if o in runs] + sorted(set(runs) - set(_LOSS_PANELS))
    n_rows = max((len(runs[o]) for o in order), default=0)
    fig, axes = plt.subplots(1, max(len(order), 1), figsize=(5.2 * max(len(order), 1), 4.2 + 0.16 * n_rows),
                             squeeze=False)
    for ax, objective in zip(axes[0], order):
        title, ylabel = _LOSS_PANELS.get(objective, (objective, "training loss"))
        for (ablation, label, frames, _), (colour, style) in zip(runs[objective], _line_styles(len(runs[objective]))):
            for k, frame in enumerate(frames):  # seed 0 carries the label; later seeds fainter
                ax.plot(frame["step"], frame["loss"], label=label if k == 0 else None, color=colour, linestyle=style,
                        linewidth=1.2 if k == 0 else 0.8, alpha=1.0 if k == 0 else 0.55)
        kinds = sorted({kind for *_, kind in runs[objective] if kind})
        n = len(runs[objective])
        ax.set_title(f"{title} ({n} ablation{'s' if n > 1 else ''})", fontsize=10)
        ax.set_xlabel("pretraining step")
        ax.set_ylabel(ylabel)
        ax.set_yscale("log")
        for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
            axis(FuncFormatter(lambda v, _: f"{v:g}"))  # 3, not 3 x 10^0
        # Below the axes: inside, a dozen labels would hide the curves.
        # One column: with several seeds a label lists every seed's perplexity, and two columns of
        # those ran off the figure's left edge (seen in the 3-seed default run).
        ax.legend(fontsize=7, ncol=1, loc="upper center",
                  bbox_to_anchor=(0.5, -0.16), frameon=False,
                  title=f"held-out {' / '.join(kinds) or 'LM'} perplexity", title_fontsize=7)
    if not order:
        axes[0][0].set_axis_off()
    fig.suptitle("Pretraining loss, one panel per objective", fontsize=11)
    if undrawn:
        fig.text(0.01, 0.005, "Not drawn (0 steps, no curve): " + ", ".join(undrawn), fontsize=7)
    fig.tight_layout()
    save_figure(fig, paths)
    return fig


def plot_finetune_curves(metrics_paths: list[str], png: str, pdf: str) -> dict:
    """One line per restart of the first dev metric against the epoch; returns what was drawn.

    The dev score after every epoch of each restart of one grid point (each restart's
    ``metrics.json`` holds its ``dev_curve``), side by side: a reader sees whether a cell's
    restarts agree, which of them collapsed (a flat line at the majority share) and whether more
    epochs would have helped."""
    restarts = [read_json(path) for path in metrics_paths]
    first = restarts[0]
    metric = next(iter(first["dev"]))
    fig, ax = _pyplot().subplots(figsize=(5.5, 3.6))
    drawn = {}
    for run in restarts:
        epochs = [point["epoch"] for point in run["dev_curve"]]
        values = [point[metric] for point in run["dev_curve"]]
        label = f"restart {run['restart']}" + (f" (collapsed: all '{run['collapsed_to']}')" if run.get("collapsed_to")
                                               else "")
        ax.plot(epochs, values, marker="o", label=label)
        drawn[run["restart"]] = values
    hp = first["hyperparameters"]
    ax.set_title(f"{first['ablation']} (step {first['pretrain_step']}) on "
                 f"{first['task']}, head {first['head']}\nlr {hp['lr']:g}, batch {hp['batch_size']}", fontsize=9)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{first['dev_split']} {metric}")
    ax.set_xticks(sorted({e for run in restarts for e in range(1, len(run["dev_curve"]) + 1)}))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, [png, pdf])
    return drawn
