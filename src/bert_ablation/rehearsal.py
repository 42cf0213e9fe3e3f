"""A rehearsal: the whole DAG of a configuration at its real shapes, with tiny budgets.

``rehearse(config)`` is the one place that shrinks a validated config (``rehearse: true``): it
keeps every shape and protocol (model sizes, vocabulary, sequence lengths and the 128 -> 512
phases, accumulation, every ablation, head, table and figure, static masking, task windows) and
shrinks only budgets (optimizer steps, batch sizes, corpus documents and shards, task examples,
restarts, grid points) to the ``rehearsal`` section's. What Lightning's ``fast_dev_run`` does for
one loop, for the whole DAG: a fault that only shows at a preset's shapes shows in minutes.

Applied in ``rules/common.smk`` while Snakemake parses the workflow, so torch-free, as the plan
layer is. What the rehearsal measured, extrapolated to the full run, is rehearsal_report.py's.
"""

from __future__ import annotations

import copy

from . import plan
from .config import validate
from .schema import ConfigError, known, schema_defaults


def rehearse(config: dict) -> dict:
    """``config`` (validated) with its budgets shrunk when ``rehearse`` is true, else unchanged.

    The result is validated again, so a rehearsal runs only configs the full run would accept.
    """
    if not config.get("rehearse"):
        return config

    budget = config["rehearsal"]
    if budget["batch_size"] % budget["accumulation_steps"]:
        raise ConfigError(f"config: rehearsal.accumulation_steps={budget['accumulation_steps']} does not divide "
                          f"rehearsal.batch_size={budget['batch_size']}; pick micro-batches of equal size.")
    for name in budget["tables"]:
        known("table or figure", name, plan.report_names(config), "rehearsal.tables", "config")
    out = copy.deepcopy(config)
    corpus = out["corpus"]
    corpus["shards"] = min(corpus["shards"], budget["shards"])
    cap = corpus["hf"]["max_documents"]
    corpus["hf"]["max_documents"] = budget["documents"] if cap is None else min(cap, budget["documents"])
    out["instances"]["dupe_factor"] = min(out["instances"]["dupe_factor"], budget["dupe_factor"])
    # Each ablation gets its whole resolved pretrain section, shrunk: its own overrides (0 steps,
    # another lr) stay, and every run of a figure maps its checkpoints to the same steps.
    for name, ablation in out["ablations"].items():
        ablation["pretrain"] = shrink_pretrain(plan.resolve_ablation(config, name)["pretrain"], budget)
    out["pretrain"] = shrink_pretrain(config["pretrain"], budget)
    finetune = out["finetune"]
    finetune["restarts"] = budget["restarts"]
    # No collapse retries: a few examples for two epochs nearly always give a constant classifier,
    # and retrying it would double the jobs' time without saying anything about the full run's
    # (tests/test_health.py pins the retries themselves).
    finetune["collapse_retry"] = {**finetune["collapse_retry"], "max_retries": 0}
    # One grid point: each level of the grid (finetune.grid, a task's, the feature-based one)
    # keeps its first value of every key it sets; the batch and the epochs are the rehearsal's.
    full_grid = {**schema_defaults("finetune")["grid"], **finetune["grid"]}
    finetune["grid"] = _one_point(full_grid, budget)
    finetune["feature_based_grid"] = _one_point(finetune["feature_based_grid"], budget)
    for task in out["tasks"].values():
        task["grid"] = _one_point(task["grid"], budget)
        task["max_train_examples"] = _smaller(task["max_train_examples"], budget["train_examples"])
        task["max_eval_examples"] = _smaller(task["max_eval_examples"], budget["eval_examples"])
    return validate(out, source="config (rehearsal)")


def shrink_pretrain(train: dict, budget: dict) -> dict:
    """One pretraining section at the rehearsal's budget: ``steps_per_phase`` steps per phase
    (both phases of a 128 -> 512 run), at least one more step than checkpoints saved, the saved
    steps and warmup at the same fractions of the run, the rehearsal's batch and accumulation."""
    train = dict(train)
    if train["steps"] == 0:  # No pretraining: nothing to shrink, its model is the initialisation
        return {**train, "batch_size": budget["batch_size"], "accumulation_steps": budget["accumulation_steps"],
                "eval_batches": budget["eval_batches"]}
    full = train["steps"]
    phases = 2 if train["short_seq_steps"] else 1
    steps = max(budget["steps_per_phase"] * phases, len(train["save_steps"]) + 1)
    saved, previous = [], 0
    for i, s in enumerate(sorted(train["save_steps"])):
        # the same fraction of the run, after the one before, leaving room for the ones after
        at = min(max(round(s / full * steps), previous + 1), steps - (len(train["save_steps"]) - i))
        saved.append(at)
        previous = at
    train.update(
        steps=steps, save_steps=saved,
        short_seq_steps=budget["steps_per_phase"] if phases == 2 else 0,
        warmup_steps=min(steps, round(train["warmup_steps"] / full * steps)),
        batch_size=budget["batch_size"], accumulation_steps=budget["accumulation_steps"],
        eval_batches=budget["eval_batches"], state_every=steps, log_every=1)
    return train


def _one_point(grid: dict, budget: dict) -> dict:
    point = {key: values[:1] for key, values in grid.items()}
    if "batch_size" in grid:
        point["batch_size"] = [budget["finetune_batch_size"]]
    if "epochs" in grid:
        point["epochs"] = [min(min(grid["epochs"]), budget["finetune_epochs"])]
    return point


def _smaller(value: int | None, cap: int) -> int:
    return cap if value is None else min(value, cap)
