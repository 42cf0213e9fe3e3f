"""Manipulation checks: did the mechanism a claim rests on form in the runs the claim uses?

``facts/mechanisms.py`` names, per mechanism, the checks (``PRECONDITIONS``) and what each means
(``CHECKS``); this module measures them from the tables' provenance, which records each cell's
pretraining runs (one per seed: health, NSP accuracy, perplexity ratio, last-layer cosine) and,
for classification tasks, the constant classifier's score (``chance``). A claim that fails one is
not testable at this scale: its verdict would compare noise, or the absence of what it is about.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from ..facts.mechanisms import ABOVE_CHANCE, NSP_ACCURACY, PRECONDITIONS, SEED_AGREEMENT
from ..storage import read_json
from . import health

Key = tuple[str, str, str]


def provenance_cells(paths: str | Path | Iterable[str | Path]) -> Iterator[tuple[str, Key, dict]]:
    """(file, (table, row, column), cell) of every cell of results/tables/<table>.provenance.json
    files, in file order."""
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        document = read_json(path)
        table = document.get("table") or Path(path).name.split(".")[0]
        for cell in document["cells"]:
            yield str(path), (table, str(cell["row"]), str(cell["column"])), cell


def facts_from_provenance(paths: str | Path | Iterable[str | Path]) -> dict[Key, dict]:
    """(table, row, column) -> what the checks read: the cell's pretraining runs and chance level."""
    return {key: {"seed_runs": cell.get("seed_runs") or [], "chance": cell.get("chance")}
            for _, key, cell in provenance_cells(paths)}


def _task_learnt(keys: list[Key], facts: Mapping[Key, dict], means: Mapping[Key, float]) -> str | None:
    for table, _, column in dict.fromkeys((t, None, c) for t, _, c in keys):
        chance = [facts.get(k, {}).get("chance") for k in means if k[0] == table and k[2] == column]
        chance = [c for c in chance if c is not None]
        if not chance:
            continue  # not a classification column: no chance level to rise above
        rows = {k[1]: means[k] for k in means if k[0] == table and k[2] == column and np.isfinite(means[k])}
        best = max(rows, key=rows.get)
        if rows[best] < max(chance) + ABOVE_CHANCE:
            return (f"task_learnt: no row of {table} / {column} learnt the task: the best, {best}, scores "
                    f"{rows[best]:.1f} against a constant classifier's {max(chance):.1f} (needs +{ABOVE_CHANCE:g})")
    return None


def _runs(keys: list[Key], facts: Mapping[Key, dict]) -> list[dict]:
    return [run for k in keys for run in facts.get(k, {}).get("seed_runs", [])]


def _nsp_formed(keys, facts, means) -> str | None:
    nsp = [r for r in _runs(keys, facts) if r.get("heldout_nsp_accuracy") is not None]
    if not nsp:
        return None  # no NSP-trained run in this claim: the task check stands for the comparison
    worst = min(nsp, key=lambda r: r["heldout_nsp_accuracy"])
    if worst["heldout_nsp_accuracy"] < NSP_ACCURACY:
        return (f"nsp_formed: run {worst['run']} tells a true next segment from a random one "
                f"{100 * worst['heldout_nsp_accuracy']:.0f}% of the time (needs {100 * NSP_ACCURACY:.0f}%)")
    return None


def _worst_above(keys, facts, measure: str, level: float) -> dict | None:
    """The claim's run with the highest ``measure`` above ``level``, or None."""
    above = [r for r in _runs(keys, facts) if r.get(measure) is not None and r[measure] > level]
    return max(above, key=lambda r: r[measure]) if above else None


def _left_plateau(keys, facts, means) -> str | None:
    worst = _worst_above(keys, facts, "perplexity_ratio", health.PLATEAU_RATIO)
    return None if worst is None else (
        f"left_plateau: run {worst['run']} ends at {worst['perplexity_ratio']:.2f} x the unigram perplexity "
        f"(needs at most {health.PLATEAU_RATIO:g})")


def _seeds_agree(keys, facts, means) -> str | None:
    spreads = []
    for table, row, column in keys:
        perplexities = [r["heldout_perplexity"] for r in facts.get((table, row, column), {}).get("seed_runs", [])
                        if r.get("heldout_perplexity") is not None and np.isfinite(r["heldout_perplexity"])]
        if len(perplexities) > 1:  # one seed: nothing to agree with (the report says the seed is not sampled)
            spreads.append((max(perplexities) / min(perplexities), row, min(perplexities), max(perplexities)))
    if not spreads:
        return None
    spread, row, low, high = max(spreads)
    return None if spread <= SEED_AGREEMENT else (
        f"seeds_agree: row {row}'s pretraining seeds end at held-out perplexity {low:.1f} to {high:.1f} "
        f"({spread:.2f} x; needs at most {SEED_AGREEMENT:g} x)")


def _no_collapse(keys, facts, means) -> str | None:
    worst = _worst_above(keys, facts, "last_layer_cosine", health.COLLAPSE_COSINE)
    return None if worst is None else (
        f"no_collapse: run {worst['run']}'s last-layer token states have mean cosine "
        f"{worst['last_layer_cosine']:.2f} (needs at most {health.COLLAPSE_COSINE:g})")


MEASURES = {"task_learnt": _task_learnt, "nsp_formed": _nsp_formed, "left_plateau": _left_plateau,
            "seeds_agree": _seeds_agree, "no_collapse": _no_collapse}


def failed_check(mechanism: str | None, keys: list[Key], facts: Mapping[Key, dict],
                 means: Mapping[Key, float]) -> str | None:
    """The first of the mechanism's checks that fails on the claim's cells ``keys`` (with the value
    measured and the level), or None. ``means``: every cell's mean, for the column-wide task check."""
    for check in PRECONDITIONS.get(mechanism or "none", PRECONDITIONS["none"]):
        failure = MEASURES[check](keys, facts, means)
        if failure:
            return failure
    return None
