"""The paper's reference numbers (``evaluation/paper_ablations.yaml``), decoded in one place.

Every table and figure is ``columns`` and ``rows`` (label -> one value per column, null where the
paper has none); the labels are in the YAML, so Table 6's "12/768/12" and Table 8's "80/10/10"
are written once. A figure of ``kind: steps`` (Figure 5) has pretraining steps (thousands) as
columns: our checkpoint at 40% of our steps is compared with the paper's point at 400k of its 1M.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from importlib import resources

from ..storage import read_yaml


@dataclass(frozen=True)
class PaperTable:
    name: str
    kind: str  # "table" or "steps"
    caption: str
    columns: tuple[str, ...]
    rows: dict  # label -> tuple of values (None: not in the paper)
    row_label: str | None = None
    x: str | None = None
    y: str | None = None

    def value(self, row: str, column: str, fraction: float | None = None) -> float:
        """The paper's number for a cell, NaN where the paper has none (e.g. a row we added). For
        ``kind: steps`` the column is matched by ``fraction`` of pretraining done."""
        if row not in self.rows:
            return math.nan
        if self.kind == "steps":
            if fraction is None:
                return math.nan
            last = float(self.columns[-1])
            matches = [k for k, step in enumerate(self.columns) if abs(float(step) / last - fraction) < 1e-9]
            value = self.rows[row][matches[0]] if matches else None
        else:
            value = self.rows[row][self.columns.index(column)] if column in self.columns else None
        return math.nan if value is None else float(value)

    def cells(self):
        """(row, column, value) for every number the paper has."""
        for row, values in self.rows.items():
            for column, value in zip(self.columns, values):
                if value is not None:
                    yield row, column, value


@functools.cache
def _reference() -> dict:
    return read_yaml(resources.files(__package__).joinpath("paper_ablations.yaml").read_text())


def paper_tables() -> dict[str, PaperTable]:
    """Every table and figure of the paper's reference, by name (table5 ... table8, figure5)."""
    return {name: paper_table(name) for name, spec in _reference().items() if isinstance(spec, dict) and "rows" in spec}


def paper_table(name: str | None) -> PaperTable | None:
    spec = _reference().get(name) if name else None
    if not isinstance(spec, dict) or "rows" not in spec:
        return None
    return PaperTable(name=name, kind=spec.get("kind", "table"), caption=spec.get("caption", name),
                      columns=tuple(str(c) for c in spec["columns"]),
                      rows={label: tuple(values) for label, values in spec["rows"].items()},
                      row_label=spec.get("row_label"), x=spec.get("x"), y=spec.get("y"))
