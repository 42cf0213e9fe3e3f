"""Judge the paper's qualitative findings on our results, with restart statistics.

The findings live as data in ``data/claims.yaml``. Each claim reduces to pairwise comparisons
between "cells" (table, row, column -> restart values): ``a > b + margin`` for
greater/order/best/worst, or ``|a - b| <= tolerance`` for close. A comparison is

* ``reproduced`` when its one-sided test rejects "it does not hold",
* ``contradicted`` when the opposite one-sided test rejects (significantly the wrong way),
* ``inconclusive`` otherwise -- a handful of restarts often cannot tell 0.2 points apart.

Tests: one-sided Welch t-test (default) or a seeded percentile bootstrap of the mean
difference; a side with one value (perplexity) or two constant sides fall back to comparing
the point values (``method: point``). A claim is reproduced if all its comparisons are,
contradicted if any is, else inconclusive; ``not evaluated`` (with the reason) if a cell is absent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from .storage import atomic_file, derive_seed, read_json

Cells = dict[tuple[str, str, str], np.ndarray]

REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_EVALUATED = "reproduced", "contradicted", "inconclusive", "not evaluated"
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_EVALUATED)
TESTS = ("welch", "bootstrap")
COLUMNS = ["id", "claim", "source", "kind", "verdict", "comparisons", "min_p", "max_p", "method", "reason"]

_COMMON = {"id", "claim", "source", "kind", "table", "column"}
_RANKED = {"margin", "lower_is_better"}  # kinds that reduce to "a > b + margin"
# Per kind: required fields and optional ones (beyond _COMMON). Exactly one of `rows`/`cells` for order.
_FIELDS = {
    "greater": ({"better", "worse"}, _RANKED),
    "order": (set(), _RANKED | {"rows", "cells"}),
    "best": ({"row"}, _RANKED | {"among"}),
    "worst": ({"row"}, _RANKED | {"among"}),
    "close": ({"cells", "tolerance"}, set()),
}
_SELECTOR = re.compile(r"^@(first|last|-?\d+)$")


class ClaimError(ValueError):
    """A claim in the YAML is malformed; the message names the claim and the field."""


class _Unavailable(LookupError):
    """A referenced cell is not in the results: the claim is not evaluated."""


# ----------------------------------------------------------------------------- loading

def load_claims(path: str | Path | None = None) -> list[dict]:
    """Read and validate claims (default: the packaged data/claims.yaml)."""
    if path is None:
        text, where = resources.files(__package__).joinpath("data/claims.yaml").read_text(), "data/claims.yaml"
    else:
        text, where = Path(path).read_text(), str(path)
    document = yaml.safe_load(text)
    claims = document.get("claims") if isinstance(document, Mapping) else document
    if not isinstance(claims, list):
        raise ClaimError(f"{where}: expected a list of claims under the key 'claims'.")
    return validate_claims(claims, where)


def validate_claims(claims: Iterable[Mapping], where: str = "claims") -> list[dict]:
    """Check every claim and return normalised copies (cell refs complete, `rows` turned into `cells`).

    Idempotent, so judge_claims can re-validate claims that load_claims already normalised.
    """
    seen: set[str] = set()
    normalised = []
    for position, raw in enumerate(claims):
        if not isinstance(raw, Mapping):
            raise ClaimError(f"{where}: claim #{position + 1} is not a mapping.")
        name = raw.get("id", f"#{position + 1}")
        if name in seen:
            raise ClaimError(f"{where}: claim '{name}': duplicate id.")
        seen.add(name)
        normalised.append(_validate_claim(dict(raw), f"{where}: claim '{name}'"))
    return normalised


def _validate_claim(claim: dict, label: str) -> dict:
    def fail(field: str, message: str):
        raise ClaimError(f"{label}: field '{field}': {message}")

    for field in ("id", "claim", "source", "kind"):
        if not isinstance(claim.get(field), str) or not claim[field].strip():
            fail(field, "missing (a non-empty string is required).")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", claim["id"]):
        fail("id", "use a lowercase slug (letters, digits, hyphens).")
    kind = claim["kind"]
    if kind not in _FIELDS:
        fail("kind", f"unknown kind '{kind}' (expected one of {', '.join(_FIELDS)}).")
    required, optional = _FIELDS[kind]
    for field in sorted(required - claim.keys()):
        fail(field, f"missing (required for kind '{kind}').")
    for field in sorted(claim.keys() - _COMMON - required - optional):
        fail(field, f"not a field of kind '{kind}'.")
    for field in ("table", "column"):
        if field in claim:
            claim[field] = _label(claim[field], lambda m: fail(field, m))

    out = {k: claim[k] for k in ("id", "claim", "source", "kind")}
    out.update({k: claim[k] for k in ("table", "column") if k in claim})

    def ref(value, field):
        return _ref(value, claim, lambda m: fail(field, m))

    if kind in ("greater", "order", "best", "worst"):
        out["margin"] = _number(claim.get("margin", 0.0), lambda m: fail("margin", m), minimum=0.0)
        if not isinstance(claim.get("lower_is_better", False), bool):
            fail("lower_is_better", "must be true or false.")
        out["lower_is_better"] = claim.get("lower_is_better", False)
    if kind == "greater":
        out["better"], out["worse"] = ref(claim["better"], "better"), ref(claim["worse"], "worse")
    elif kind == "order":
        if ("rows" in claim) == ("cells" in claim):
            fail("rows", "give exactly one of 'rows' (row names) or 'cells' (cell refs), best first.")
        field = "rows" if "rows" in claim else "cells"
        items = claim[field]
        if not isinstance(items, list) or len(items) < 2:
            fail(field, "needs a list of at least two entries, best first.")
        if field == "rows" and not all(isinstance(item, str) for item in items):
            fail("rows", "entries must be row names (use 'cells' for full refs).")
        out["cells"] = [ref(item, field) for item in items]
    elif kind in ("best", "worst"):
        out["row"] = ref(claim["row"], "row")
        among = claim.get("among")
        if among is not None:
            if not isinstance(among, list) or not all(isinstance(r, str) for r in among):
                fail("among", "must be a list of row names.")
            if not set(among) - {out["row"]["row"]}:
                fail("among", "must name at least one row other than the claimed one.")
        out["among"] = among
    elif kind == "close":
        if not isinstance(claim["cells"], list) or len(claim["cells"]) != 2:
            fail("cells", "needs exactly two cell refs.")
        out["cells"] = [ref(item, "cells") for item in claim["cells"]]
        out["tolerance"] = _number(claim["tolerance"], lambda m: fail("tolerance", m), minimum=0.0, strict=True)
    return out


def _label(value, fail) -> str:
    # YAML reads an unquoted step column (100) as an int; cells are keyed by strings.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        fail(f"expected a string label, got {value!r}.")
    return str(value)


def _number(value, fail, minimum: float, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        fail(f"expected a number, got {value!r}.")
    if value < minimum or (strict and value == minimum):
        fail(f"must be {'>' if strict else '>='} {minimum}, got {value}.")
    return float(value)


def _ref(value, claim: Mapping, fail) -> dict:
    """A cell ref {table, row, column}; a bare string is a row, table and column default to the claim's."""
    if isinstance(value, str):
        value = {"row": value}
    if not isinstance(value, Mapping):
        fail(f"expected a row name or a {{table, row, column}} mapping, got {value!r}.")
    unknown = set(value) - {"table", "row", "column"}
    if unknown:
        fail(f"unknown key(s) {sorted(unknown)} in cell ref.")
    out = {}
    for key in ("table", "row", "column"):
        if key in value:
            out[key] = _label(value[key], fail)
        elif key != "row" and key in claim:
            out[key] = _label(claim[key], fail)
        else:
            fail(f"cell ref {dict(value)} has no '{key}'" + ("" if key == "row" else " (set it here or on the claim)."))
    if out["column"].startswith("@") and not _SELECTOR.match(out["column"]):
        fail(f"bad column selector '{out['column']}' (use @first, @last or @<index>).")
    return out


# ----------------------------------------------------------------------------- cells

def cells_from_provenance(paths: str | Path | Iterable[str | Path]) -> Cells:
    """(table, row, column) -> restart values, from results/tables/<table>.provenance.json files.

    Cell order follows the files, which is what column selectors (@first, @last) resolve against.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    cells: Cells = {}
    for path in paths:
        document = read_json(path)
        table = document.get("table") or Path(path).name.split(".")[0]
        for cell in document["cells"]:
            key = (table, str(cell["row"]), str(cell["column"]))
            if key in cells:
                raise ValueError(f"{path}: cell {key} appears twice.")
            # Fine-tuning cells list restarts; a pretraining cell (perplexity) may carry one value.
            values = [r["value"] for r in cell["restarts"]] if "restarts" in cell else [cell["value"]]
            cells[key] = np.asarray(values, dtype=float)
    return cells


def cells_from_paper(restarts: int = 5, spread: float = 0.05) -> Cells:
    """The paper's numbers as cells: ``restarts`` values evenly spread ±``spread`` around each number.

    A sanity fixture: every claim must hold on the paper's own numbers. Perplexity stays a single
    value; figure5 uses the values read off the plot, columns = steps (thousands) as strings.
    """
    from .tables import paper_reference

    reference = paper_reference()
    noise = np.linspace(-spread, spread, restarts) if restarts > 1 else np.zeros(1)
    cells: Cells = {}

    def put(table, row, column, value):
        if value is not None:
            single = column == "LM (ppl)"
            cells[(table, row, column)] = np.array([value], float) if single else value + noise

    for table in ("table5", "table7"):
        spec = reference[table]
        for row, values in spec["rows"].items():
            for column, value in zip(spec["columns"], values):
                put(table, row, column, value)
    for table, fmt in (("table6", lambda v: f"{v[0]}/{v[1]}/{v[2]}"),
                       ("table8", lambda v: "/".join(str(round(100 * x)) for x in v[:3]))):
        spec = reference[table]
        for values in spec["rows"]:
            for column, value in zip(spec["columns"][3:], values[3:]):
                put(table, fmt(values), column, value)
    plot = reference["figure5"]["read_off_plot"]
    for row, key in zip(reference["figure5"]["series"], ("mlm", "ltr")):
        for step, value in zip(plot["steps_k"], plot[key]):
            put("figure5", row, str(step), value)
    return cells


def _columns(cells: Cells) -> dict[str, list[str]]:
    """Each table's columns in first-seen order."""
    out: dict[str, list[str]] = {}
    for table, _, column in cells:
        columns = out.setdefault(table, [])
        if column not in columns:
            columns.append(column)
    return out


@dataclass(frozen=True)
class _Cell:
    table: str
    row: str
    column: str
    values: np.ndarray

    def describe(self, claim: Mapping) -> str:
        """Row name, plus column/table where they differ from the claim's defaults."""
        where = [self.row]
        if self.column != claim.get("column"):
            where.append(f"[{self.column}]")
        if self.table != claim.get("table"):
            where.insert(0, f"{self.table}:")
        v = self.values
        spread = f"±{v.std(ddof=1):.2f}" if len(v) > 1 else ""
        return f"{' '.join(where)} {v.mean():.2f}{spread} (n={len(v)})"


def _resolve(ref: Mapping, cells: Cells, columns: dict[str, list[str]]) -> _Cell:
    table, row, column = ref["table"], ref["row"], ref["column"]
    if column.startswith("@"):
        available = columns.get(table, [])
        name = column[1:]
        index = {"first": 0, "last": -1}.get(name)
        index = int(name) if index is None else index
        if not -len(available) <= index < len(available):
            raise _Unavailable(f"selector {column} out of range for {table} ({len(available)} columns)")
        column = available[index]
    values = cells.get((table, row, column))
    if values is None:
        raise _Unavailable(f"missing cell {table} / {row} / {column}")
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise _Unavailable(f"no finite values in cell {table} / {row} / {column}")
    return _Cell(table, row, column, values)


# ----------------------------------------------------------------------------- statistics

@dataclass(frozen=True)
class _Settings:
    alpha: float
    test: str
    bootstrap_samples: int
    seed: int


@dataclass(frozen=True)
class _Comparison:
    text: str
    verdict: str
    p: float  # p-value of "the comparison holds" (TOST p for close); NaN for point comparisons
    method: str


def _is_point(a: np.ndarray, b: np.ndarray) -> bool:
    # Welch needs a variance estimate: one value (perplexity) or two constant sides give none.
    return min(len(a), len(b)) < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0)


def _one_sided_p(a: np.ndarray, b: np.ndarray, shift: float, settings: _Settings, key: str) -> tuple[float, float]:
    """p-values for H1: mean(a) - mean(b) > shift, and for H1: mean(a) - mean(b) < shift."""
    if settings.test == "welch":
        greater = stats.ttest_ind(a - shift, b, equal_var=False, alternative="greater").pvalue
        return float(greater), float(1.0 - greater)  # Welch's two one-sided p-values sum to one
    # Same key -> same resamples, so the TOST bounds of one comparison share one bootstrap.
    rng = np.random.default_rng([settings.seed, derive_seed(key)])
    n = settings.bootstrap_samples
    diffs = (a[rng.integers(0, len(a), (n, len(a)))].mean(axis=1)
             - b[rng.integers(0, len(b), (n, len(b)))].mean(axis=1))
    # +1: a Monte-Carlo p-value is never exactly zero.
    return (np.sum(diffs <= shift) + 1) / (n + 1), (np.sum(diffs >= shift) + 1) / (n + 1)


def _fmt_p(p: float) -> str:
    return f"p={p:.2g}"


def _greater(better: _Cell, worse: _Cell, margin: float, lower_is_better: bool, settings: _Settings,
             claim: Mapping) -> _Comparison:
    """Does `better` beat `worse` by more than `margin` points?"""
    sign = -1.0 if lower_is_better else 1.0  # lower-is-better: compare negated values
    a, b = sign * better.values, sign * worse.values
    text = f"{better.describe(claim)} {'<' if lower_is_better else '>'} {worse.describe(claim)}"
    if margin:
        text += f" (margin {margin:g})"
    if _is_point(a, b):
        gap = a.mean() - b.mean() - margin
        verdict = REPRODUCED if gap > 0 else CONTRADICTED if gap < 0 else INCONCLUSIVE
        return _Comparison(f"{text}: point", verdict, math.nan, "point")
    key = f"{claim['id']}|{better.table}|{better.row}|{better.column}|{worse.table}|{worse.row}|{worse.column}"
    p_holds, p_reverse = _one_sided_p(a, b, margin, settings, key)
    if p_holds < settings.alpha:
        verdict, detail = REPRODUCED, _fmt_p(p_holds)
    elif p_reverse < settings.alpha:  # significantly short of the margin, or the wrong way round
        verdict, detail = CONTRADICTED, f"{_fmt_p(p_holds)}, reverse {_fmt_p(p_reverse)}"
    else:
        verdict, detail = INCONCLUSIVE, _fmt_p(p_holds)
    return _Comparison(f"{text}: {detail}", verdict, float(p_holds), settings.test)


def _close(x: _Cell, y: _Cell, tolerance: float, settings: _Settings, claim: Mapping) -> _Comparison:
    """Equivalence |mean(x) - mean(y)| <= tolerance by two one-sided tests (TOST)."""
    text = f"{x.describe(claim)} ≈ {y.describe(claim)} within ±{tolerance:g}"
    if _is_point(x.values, y.values):
        inside = abs(x.values.mean() - y.values.mean()) <= tolerance
        return _Comparison(f"{text}: point", REPRODUCED if inside else CONTRADICTED, math.nan, "point")
    key = f"{claim['id']}|{x.table}|{x.row}|{x.column}|{y.table}|{y.row}|{y.column}"
    above_lower, below_lower = _one_sided_p(x.values, y.values, -tolerance, settings, key)
    above_upper, below_upper = _one_sided_p(x.values, y.values, tolerance, settings, key)
    p_tost = max(above_lower, below_upper)
    if p_tost < settings.alpha:
        verdict = REPRODUCED
    elif below_lower < settings.alpha or above_upper < settings.alpha:
        verdict = CONTRADICTED  # significantly outside the tolerance band
    else:
        verdict = INCONCLUSIVE
    return _Comparison(f"{text}: TOST {_fmt_p(p_tost)}", verdict, float(p_tost), f"{settings.test} TOST")


# ----------------------------------------------------------------------------- judging

def _resolve_all(refs: list[Mapping], cells: Cells, columns: dict[str, list[str]]) -> list[_Cell]:
    """Resolve every ref, reporting all absent cells at once (one rerun fixes them all)."""
    resolved, missing = [], []
    for ref in refs:
        try:
            resolved.append(_resolve(ref, cells, columns))
        except _Unavailable as absent:
            missing.append(str(absent))
    if missing:
        raise _Unavailable("; ".join(dict.fromkeys(missing)))
    return resolved


def _comparisons(claim: Mapping, cells: Cells, columns: dict[str, list[str]], settings: _Settings) -> list[_Comparison]:
    kind = claim["kind"]
    if kind == "close":
        x, y = _resolve_all(claim["cells"], cells, columns)
        return [_close(x, y, claim["tolerance"], settings, claim)]
    if kind == "greater":
        pairs = [tuple(_resolve_all([claim["better"], claim["worse"]], cells, columns))]
    elif kind == "order":
        ranked = _resolve_all(claim["cells"], cells, columns)
        pairs = list(zip(ranked, ranked[1:]))
    else:  # best / worst: the row against each other row of its column
        ref = claim["row"]
        (subject,) = _resolve_all([ref], cells, columns)
        among = claim["among"]
        if among is None:  # default: every row the results have in this column
            among = [r for t, r, c in cells if t == subject.table and c == subject.column]
        others = _resolve_all([{**ref, "column": subject.column, "row": r}
                               for r in dict.fromkeys(among) if r != subject.row], cells, columns)
        if not others:
            raise _Unavailable(f"no other row in {subject.table} / {subject.column} to compare with")
        pairs = [(subject, other) if kind == "best" else (other, subject) for other in others]
    return [_greater(a, b, claim["margin"], claim["lower_is_better"], settings, claim) for a, b in pairs]


def _verdict(comparisons: list[_Comparison]) -> str:
    verdicts = {c.verdict for c in comparisons}
    if CONTRADICTED in verdicts:
        return CONTRADICTED
    return REPRODUCED if verdicts == {REPRODUCED} else INCONCLUSIVE


def judge_claims(claims: Iterable[Mapping], cells: Cells, alpha: float = 0.05, test: str = "welch",
                 bootstrap_samples: int = 10000, seed: int = 0) -> pd.DataFrame:
    """One row per claim: verdict, the comparisons behind it, min/max p-value, method, reason."""
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}.")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
    if bootstrap_samples < 1:
        raise ValueError(f"bootstrap_samples must be positive, got {bootstrap_samples}.")
    settings = _Settings(alpha, test, int(bootstrap_samples), int(seed))
    columns = _columns(cells)
    records = []
    for claim in validate_claims(claims):
        record = {k: claim[k] for k in ("id", "claim", "source", "kind")}
        try:
            comparisons = _comparisons(claim, cells, columns, settings)
        except _Unavailable as missing:
            records.append({**record, "verdict": NOT_EVALUATED, "comparisons": "", "min_p": math.nan,
                            "max_p": math.nan, "method": "", "reason": str(missing)})
            continue
        p = [c.p for c in comparisons if not math.isnan(c.p)]
        records.append({
            **record, "verdict": _verdict(comparisons),
            "comparisons": "; ".join(c.text for c in comparisons),
            "min_p": min(p) if p else math.nan, "max_p": max(p) if p else math.nan,
            "method": ", ".join(dict.fromkeys(c.method for c in comparisons)), "reason": "",
        })
    return pd.DataFrame.from_records(records, columns=COLUMNS)


# ----------------------------------------------------------------------------- output

def describe_test(test: str, alpha: float) -> str:
    name = {"welch": "one-sided Welch t-test", "bootstrap": "one-sided percentile bootstrap"}[test]
    return f"{name}, alpha {alpha:g}"


def summary_line(frame: pd.DataFrame, alpha: float, test: str) -> str:
    counts = frame["verdict"].value_counts()
    shown = [f"{counts.get(v, 0)} {v}" for v in VERDICTS if v != NOT_EVALUATED or counts.get(v, 0)]
    return f"{', '.join(shown)} of {len(frame)} claims ({describe_test(test, alpha)})"


def _md_cell(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.2g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(frame: pd.DataFrame, alpha: float, test: str) -> str:
    lines = [
        "**Claims of the paper, judged on our results.**", "",
        summary_line(frame, alpha, test) + ".", "",
        "Each comparison is ours: mean±sd over restarts (n). Cells with one value (perplexity) or no "
        "variance are compared as points; `close` claims use two one-sided tests (TOST) against the "
        "stated tolerance.", "",
        "| id | claim | verdict | comparisons | min p | max p | source |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in frame.itertuples():
        detail = r.comparisons or f"not evaluated: {r.reason}"
        lines.append("| " + " | ".join(_md_cell(v) for v in (r.id, r.claim, r.verdict, detail, r.min_p, r.max_p,
                                                                 r.source)) + " |")
    return "\n".join(lines) + "\n"


def write_claims(frame: pd.DataFrame, csv_path: str | Path, md_path: str | Path, alpha: float = 0.05,
                 test: str = "welch") -> None:
    with atomic_file(csv_path) as handle:
        frame.to_csv(handle, index=False, float_format="%.4g")
    with atomic_file(md_path) as handle:
        handle.write(to_markdown(frame, alpha, test))


def check_claims(provenance_paths: Iterable[str | Path], csv_path: str | Path, md_path: str | Path,
                 claims_path: str | Path | None = None, alpha: float = 0.05, test: str = "welch",
                 bootstrap_samples: int = 10000, seed: int = 0) -> pd.DataFrame:
    """Load claims and cells, judge, write CSV and Markdown; returns the verdict frame."""
    frame = judge_claims(load_claims(claims_path), cells_from_provenance(provenance_paths), alpha=alpha,
                         test=test, bootstrap_samples=bootstrap_samples, seed=seed)
    write_claims(frame, csv_path, md_path, alpha=alpha, test=test)
    return frame
