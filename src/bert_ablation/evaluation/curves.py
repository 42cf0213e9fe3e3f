"""Fine-tuning curves: the dev score after every epoch of each restart of one grid point.

Each restart's ``metrics.json`` holds its ``dev_curve``; this draws them side by side so a
reader sees whether a cell's restarts agree, which of them collapsed (a flat line at the
majority share) and whether more epochs would have helped.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..storage import atomic_file, read_json  # noqa: E402


def plot_finetune_curves(metrics_paths: list[str], png: str, pdf: str) -> dict:
    """One line per restart of the first dev metric against the epoch; returns what was drawn."""
    restarts = [read_json(path) for path in metrics_paths]
    first = restarts[0]
    metric = next(iter(first["dev"]))
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
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
    for path, fmt in ((png, "png"), (pdf, "pdf")):
        with atomic_file(path, "wb") as handle:
            fig.savefig(handle, format=fmt, dpi=120)
    plt.close(fig)
    return drawn
