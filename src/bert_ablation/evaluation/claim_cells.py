"""Claim cells: the values a claim compares, loaded and resolved.

A cell is (table, row, column) -> restart values with the pretraining seed of each, read from the
tables' provenance files (or, as a sanity fixture, from the paper's own numbers). A claim's cell
refs resolve against them: a column selector (``@first``, ``@last``, ``@k``) names a column by its
place, NaN restarts are set aside and counted, and a cell that is absent raises ``Unavailable``
(the claim is not evaluated). A cell whose pretraining run did not learn (its provenance's
``not_learnt``, from the run's health check) measures nothing, and a verdict built on it would
judge noise: it raises ``Excluded`` (the claim is not testable). Judging is claims.py's job.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .paper import paper_tables
from .preconditions import provenance_cells
from .statistics import Sample

# (table, row, column) -> the cell's values with the pretraining seed of each (a bare array: one seed)
Cells = dict[tuple[str, str, str], "Sample | np.ndarray"]


class Unavailable(LookupError):
    """A referenced cell is not in the results: the claim is not evaluated."""


class Excluded(Unavailable):
    """A referenced cell comes from a pretraining run that did not learn, or a check that the claim's
    mechanism formed failed (preconditions.py): the claim is not testable at this scale."""


def cells_from_provenance(paths: str | Path | Iterable[str | Path]) -> Cells:
    """(table, row, column) -> values with their pretraining seeds, from
    results/tables/<table>.provenance.json files.

    A value's seed label is its pretraining run's seeds (init, data, mask), so that two ablations
    pretrained at the same seeds are paired; provenance from before seeds were recorded: one seed.
    Cell order follows the files, which is what column selectors (@first, @last) resolve against.
    """
    cells: Cells = {}
    for path, key, cell in provenance_cells(paths):
        if key in cells:
            raise ValueError(f"{path}: cell {key} appears twice.")
        runs = cell.get("seed_runs") or []
        labels = [json.dumps(r.get("seeds"), sort_keys=True) if r.get("seeds") else str(r.get("seed_index"))
                  for r in runs]
        # Fine-tuning cells list restarts; a pretraining cell (perplexity) one value per seed.
        restarts = cell["restarts"] if "restarts" in cell else [{"value": cell["value"]}]
        seeds = [labels[r["pretrain_seed"]] if labels and r.get("pretrain_seed") is not None
                 else str(r.get("pretrain_seed", 0)) for r in restarts]
        cells[key] = Sample.of(np.asarray([r["value"] for r in restarts], dtype=float), seeds)
    return cells


def exclusions_from_provenance(paths: str | Path | Iterable[str | Path]) -> dict[tuple[str, str, str], str]:
    """(table, row, column) -> why the cell measures nothing: its pretraining run did not learn
    (the provenance's ``not_learnt``, written by tables.py from the run's ``health``)."""
    return {key: f"pretraining run '{cell.get('ablation', cell['row'])}' did not learn ({cell['not_learnt']})"
            for _, key, cell in provenance_cells(paths) if cell.get("not_learnt")}


def cells_from_paper(restarts: int = 5, spread: float = 0.05, seeds: int = 1) -> Cells:
    """The paper's numbers as cells: ``seeds`` pretraining seeds of ``restarts`` values each, evenly
    spread ±``spread`` around each number (seed k of every row shares its label: paired).

    A sanity fixture: every claim must hold on the paper's own numbers. Perplexity has one value
    per seed; figure5 uses the values read off the plot, columns = steps (thousands) as strings.
    """
    draws = seeds * restarts
    noise = np.linspace(-spread, spread, draws) if draws > 1 else np.zeros(1)
    labels = np.repeat([str(k) for k in range(seeds)], restarts)
    per_seed = np.linspace(-spread, spread, seeds) if seeds > 1 else np.zeros(1)
    cells: Cells = {}
    for name, table in paper_tables().items():
        for row, column, value in table.cells():
            if column == "LM (ppl)":
                cells[(name, row, column)] = Sample.of(value + per_seed, [str(k) for k in range(seeds)])
            else:
                cells[(name, row, column)] = Sample.of(value + noise, labels)
    return cells


def table_columns(cells: Cells) -> dict[str, list[str]]:
    """Each table's columns in first-seen order."""
    out: dict[str, list[str]] = {}
    for table, _, column in cells:
        columns = out.setdefault(table, [])
        if column not in columns:
            columns.append(column)
    return out


@dataclass(frozen=True)
class Cell:
    table: str
    row: str
    column: str
    sample: Sample
    failed: int = 0  # restarts with a NaN value, left out of `values` but never out of sight

    @property
    def values(self) -> np.ndarray:
        return self.sample.values

    def describe(self, claim: Mapping) -> str:
        """Row name, plus column/table where they differ from the claim's defaults."""
        where = [self.row]
        if self.column != claim.get("column"):
            where.append(f"[{self.column}]")
        if self.table != claim.get("table"):
            where.insert(0, f"{self.table}:")
        v = self.values
        spread = f"±{v.std(ddof=1):.2f}" if len(v) > 1 else ""
        failed = f", {self.failed} failed" if self.failed else ""
        seeds = len(self.sample.seed_labels())
        count = f"{seeds} seeds, n={len(v)}" if seeds > 1 else f"n={len(v)}"
        return f"{' '.join(where)} {v.mean():.2f}{spread} ({count}{failed})"


def _resolve(ref: Mapping, cells: Cells, columns: dict[str, list[str]], excluded: Mapping = {}) -> Cell:
    table, row, column = ref["table"], ref["row"], ref["column"]
    if column.startswith("@"):
        available = columns.get(table, [])
        name = column[1:]
        index = {"first": 0, "last": -1}.get(name)
        index = int(name) if index is None else index
        if not -len(available) <= index < len(available):
            raise Unavailable(f"selector {column} out of range for {table} ({len(available)} columns)")
        column = available[index]
    sample = cells.get((table, row, column))
    if sample is None:
        raise Unavailable(f"missing cell {table} / {row} / {column}")
    if (table, row, column) in excluded:
        raise Excluded(f"{table} / {row} / {column}: {excluded[(table, row, column)]}")
    sample = sample if isinstance(sample, Sample) else Sample.of(sample)
    finite = sample.finite()
    if not len(finite.values):
        raise Unavailable(f"no finite values in cell {table} / {row} / {column}")
    return Cell(table, row, column, finite, len(sample.values) - len(finite.values))


def resolve_all(refs: list[Mapping], cells: Cells, columns: dict[str, list[str]],
                 excluded: Mapping = {}) -> list[Cell]:
    """Resolve every ref, reporting all absent cells at once (one rerun fixes them all); a cell of a
    run that did not learn makes the claim not testable, whatever else is missing."""
    resolved, missing, not_learnt = [], [], []
    for ref in refs:
        try:
            resolved.append(_resolve(ref, cells, columns, excluded))
        except Excluded as reason:
            not_learnt.append(str(reason))
        except Unavailable as absent:
            missing.append(str(absent))
    if not_learnt:
        raise Excluded("not testable (pretraining health): " + "; ".join(dict.fromkeys(not_learnt + missing)))
    if missing:
        raise Unavailable("; ".join(dict.fromkeys(missing)))
    return resolved
