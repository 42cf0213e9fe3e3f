"""A claim's specification: the YAML in ``evaluation/claims.yaml`` read, validated and normalised.

Each claim names a kind (greater, order, best, worst, close), the cells it compares as refs
{table, row, column} (a bare string is a row; table and column default to the claim's; a column
may be a selector, ``@first``, ``@last`` or ``@<index>``), and optionally its mechanism. The
verdicts a claim can receive are named here too, so that judging (claims.py) and the report
(claims_report.py) share one vocabulary.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path

from ..facts.mechanisms import MECHANISMS
from ..storage import read_yaml

REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"
NOT_TESTABLE, NOT_EVALUATED = "not testable", "not evaluated"
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE, NOT_EVALUATED)


# `mechanism` (optional; every packaged claim has one): what produces the finding, a name of
# mechanisms.MECHANISMS, so that a control world without it can be checked to lose the claim.
_COMMON = {"id", "claim", "source", "kind", "table", "column", "mechanism"}
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


# ----------------------------------------------------------------------------- loading

def load_claims(path: str | Path | None = None) -> list[dict]:
    """Read and validate claims (default: the packaged evaluation/claims.yaml)."""
    if path is None:
        text, where = resources.files(__package__).joinpath("claims.yaml").read_text(), "evaluation/claims.yaml"
    else:
        text, where = Path(path).read_text(), str(path)
    document = read_yaml(text)
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
    if "mechanism" in claim and (not isinstance(claim["mechanism"], str) or claim["mechanism"] not in MECHANISMS):
        fail("mechanism", f"unknown mechanism {claim['mechanism']!r} (expected one of {', '.join(MECHANISMS)}).")
    required, optional = _FIELDS[kind]
    for field in sorted(required - claim.keys()):
        fail(field, f"missing (required for kind '{kind}').")
    for field in sorted(claim.keys() - _COMMON - required - optional):
        fail(field, f"not a field of kind '{kind}'.")
    for field in ("table", "column"):
        if field in claim:
            claim[field] = _label(claim[field], lambda m: fail(field, m))

    out = {k: claim[k] for k in ("id", "claim", "source", "kind")}
    out.update({k: claim[k] for k in ("table", "column", "mechanism") if k in claim})

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
