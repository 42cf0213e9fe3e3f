"""Judge the paper's qualitative findings on our results, with restart statistics.

The findings live as data in ``evaluation/claims.yaml``. Each claim reduces to pairwise comparisons
between "cells" (table, row, column -> restart values; loaded and resolved in claim_cells.py):
``a > b + margin`` for greater/order/best/worst, or ``|a - b| <= tolerance`` for close. A comparison is

* ``reproduced`` when its one-sided test rejects "it does not hold",
* ``contradicted`` when the opposite one-sided test rejects (significantly the wrong way),
* ``inconclusive`` otherwise -- a handful of restarts often cannot tell 0.2 points apart.

Tests: one-sided Welch t-test (default) or a seeded percentile bootstrap of the mean
difference; a side with one value (perplexity) or two constant sides fall back to comparing
the point values (``method: point``). A claim is reproduced if all its comparisons are,
contradicted if any is, else inconclusive; ``not evaluated`` (with the reason) if a cell is absent,
or excluded: a cell whose pretraining run did not learn (its provenance's ``not_learnt``, from
the run's health check) measures nothing, and a verdict built on it would judge noise, so its
claims are "not evaluated" with "excluded, not testable: ..." and the run's reason.

Multiplicity: the hypotheses are the claims, not their comparisons. A claim holds only if every
comparison does, so "it holds" is an intersection-union test: its p-value is the largest of its
comparisons' (Berger 1982; no correction is owed inside a conjunction). "It is significantly the
other way" is a union (any comparison reversed, or outside the band of a ``close``): its p-value
is the smallest of those tests times their number (Bonferroni inside the claim). These two
p-values of every evaluated claim form one family, and Holm's step-down adjusts it (family-wise
error of any false reproduced or contradicted verdict <= alpha, valid under any dependence:
claims share cells). Verdicts are reported uncorrected and Holm-adjusted; ``correction`` picks
which one is ``verdict``. Counting every one-sided test of every comparison as a family member
instead (as this module did before 2026-12-05) multiplies by tests that cannot both be small
(a comparison's two one-sided Welch p-values sum to one) and by the parts of a conjunction.
Each comparison also reports its effect, the difference it tests (signed so that positive is
the claimed direction), with a two-sided (1 - 2 alpha) interval: Welch's t interval, or the
bootstrap's percentile interval. Its bounds
are the one-sided tests at alpha, so the uncorrected Welch verdict is reproduced exactly when
the interval clears the margin.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..storage import derive_seed
from .claim_cells import (
    Cell,
    Cells,
    Excluded,
    Unavailable,
    cells_from_provenance,
    exclusions_from_provenance,
    resolve_all,
    table_columns,
)
from .claim_spec import (
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_EVALUATED,
    NOT_TESTABLE,
    REPRODUCED,
    load_claims,
    validate_claims,
)
from .claims_report import write_claims
from .preconditions import facts_from_provenance, failed_check
from .statistics import TESTS, Difference, Sample, holm

log = logging.getLogger(__name__)

CORRECTIONS = ("none", "holm")
COLUMNS = ["id", "claim", "source", "kind", "mechanism", "verdict", "verdict_uncorrected", "verdict_holm", "effect",
           "ci_low", "ci_high", "comparisons", "p", "p_holm", "p_reversed", "p_reversed_holm", "tests", "method",
           "seeds", "floor", "reason"]


# ----------------------------------------------------------------------------- statistics

@dataclass(frozen=True)
class _Settings:
    alpha: float
    test: str
    bootstrap_samples: int
    seed: int


@dataclass(frozen=True)
class _Comparison:
    """One comparison's raw tests; verdicts are drawn from them once the whole family is known."""
    text: str
    method: str
    effect: float  # the difference tested, positive = the claimed direction (x - y for close)
    ci: tuple[float, float]  # (1 - 2 alpha) interval of `effect`; NaN for point comparisons
    threshold: float  # what `effect` must exceed: the margin (tolerance for close)
    p: float  # p-value of "the comparison holds" (TOST p for close); NaN for point comparisons
    p_against: tuple[float, ...]  # p-values of "significantly the other way" (close: below / above the band)
    against: str  # how the text names p_against: "reverse" or "outside"
    point_verdict: str | None = None  # point comparisons: decided by the point values, no test
    floor: float = 0.0  # the smallest p the test's design can give (statistics.py, "Resolution")
    design: str = ""  # what the Multi-Bootstrap resampled

    @property
    def tested(self) -> bool:
        return self.point_verdict is None

    def describe(self, alpha: float) -> str:
        effect = f"diff {self.effect:+.2f}"
        if not self.tested:
            return f"{self.text}: point, {effect}"
        level = f"{100 * (1 - 2 * alpha):g}%"
        detail = f"{'TOST ' if self.against == 'outside' else ''}{_fmt_p(self.p)}"
        if min(self.p_against) < alpha:
            k = int(np.argmin(self.p_against))
            detail += f", {self.against} {_fmt_p(self.p_against[k])}"
        return f"{self.text}: {detail}, {effect} [{level} CI {self.ci[0]:+.2f}, {self.ci[1]:+.2f}]"


@dataclass(frozen=True)
class _ClaimTest:
    """A claim's two hypotheses, from its comparisons: "it holds" (intersection-union: the
    largest p of its tested comparisons) and "it is significantly the other way" (union:
    Bonferroni over every reverse/outside test). Point comparisons add no test: they must all
    hold for "reproduced", and one that fails decides "contradicted"."""
    comparisons: tuple[_Comparison, ...]
    p_holm: float = math.nan
    p_reversed_holm: float = math.nan

    @property
    def p(self) -> float:
        """NaN when every comparison is a point one."""
        return max((c.p for c in self.comparisons if c.tested), default=math.nan)

    @property
    def _against(self) -> list[float]:
        return [p for c in self.comparisons if c.tested for p in c.p_against]

    @property
    def p_reversed(self) -> float:
        against = self._against
        return min(1.0, len(against) * min(against)) if against else math.nan

    def p_values(self) -> list[float]:
        """What this claim adds to the multiplicity family (NaN: no test)."""
        return [self.p, self.p_reversed]

    def verdict(self, alpha: float, adjusted: bool) -> str:
        points = {c.point_verdict for c in self.comparisons if not c.tested}
        # Uncorrected: the smallest reverse/outside p on its own, no Bonferroni inside the claim.
        p, reversed_ = (self.p_holm, self.p_reversed_holm) if adjusted else (self.p, min(self._against, default=math.nan))
        if CONTRADICTED in points or reversed_ < alpha:
            return CONTRADICTED
        holds = points <= {REPRODUCED} and (math.isnan(p) or p < alpha)
        return REPRODUCED if holds else INCONCLUSIVE

    def tests(self) -> int:
        return sum(not math.isnan(p) for p in self.p_values())


def _is_point(a: np.ndarray, b: np.ndarray) -> bool:
    # Welch needs a variance estimate: one value (perplexity) or two constant sides give none.
    return min(len(a), len(b)) < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0)


def _fmt_p(p: float) -> str:
    return f"p={p:.2g}"


def _greater(better: Cell, worse: Cell, margin: float, lower_is_better: bool, settings: _Settings,
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
        return _Comparison(text, "point", float(a.mean() - b.mean()), (math.nan, math.nan), margin, math.nan, (),
                           "reverse", verdict)
    key = f"{claim['id']}|{better.table}|{better.row}|{better.column}|{worse.table}|{worse.row}|{worse.column}"
    difference = _difference(Sample(a, better.sample.seeds), Sample(b, worse.sample.seeds), settings, key)
    # reverse: significantly short of the margin, or the wrong way round
    p_holds, p_reverse = difference.one_sided_p(margin)
    return _Comparison(text, settings.test, difference.effect, difference.interval(), margin, p_holds, (p_reverse,),
                       "reverse", floor=difference.floor,
                       design=difference.design.describe() if difference.design else "")


def _close(x: Cell, y: Cell, tolerance: float, settings: _Settings, claim: Mapping) -> _Comparison:
    """Equivalence |mean(x) - mean(y)| <= tolerance by two one-sided tests (TOST)."""
    text = f"{x.describe(claim)} ≈ {y.describe(claim)} within ±{tolerance:g}"
    effect = float(x.values.mean() - y.values.mean())
    if _is_point(x.values, y.values):
        verdict = REPRODUCED if abs(effect) <= tolerance else CONTRADICTED
        return _Comparison(text, "point", effect, (math.nan, math.nan), tolerance, math.nan, (), "outside", verdict)
    key = f"{claim['id']}|{x.table}|{x.row}|{x.column}|{y.table}|{y.row}|{y.column}"
    difference = _difference(x.sample, y.sample, settings, key)
    above_lower, below_lower = difference.one_sided_p(-tolerance)
    above_upper, below_upper = difference.one_sided_p(tolerance)
    # Reproduced: TOST (both bounds rejected, one test by intersection-union); contradicted:
    # significantly outside the band on either side.
    return _Comparison(text, f"{settings.test} TOST", effect, difference.interval(), tolerance,
                       max(above_lower, below_upper), (below_lower, above_upper), "outside", floor=difference.floor,
                       design=difference.design.describe() if difference.design else "")


def _difference(a: Sample, b: Sample, settings: _Settings, key: str) -> Difference:
    # One seeded set of resamples per comparison: its TOST bounds and its interval share them.
    rng = np.random.default_rng([settings.seed, derive_seed(key)])
    return Difference(a, b, settings.test, settings.alpha, settings.bootstrap_samples, rng)


# ----------------------------------------------------------------------------- judging

def _comparisons(claim: Mapping, cells: Cells, columns: dict[str, list[str]], settings: _Settings,
                 excluded: Mapping = {}, facts: Mapping | None = None) -> list[_Comparison]:
    """The claim's comparisons; raises Unavailable for a missing cell, Excluded for a cell of a run
    that did not learn or (with ``facts``) a failed check of the claim's mechanism."""
    kind = claim["kind"]
    if kind == "close":
        x, y = resolve_all(claim["cells"], cells, columns, excluded)
        _check_preconditions(claim, [x, y], cells, facts)
        return [_close(x, y, claim["tolerance"], settings, claim)]
    if kind == "greater":
        pairs = [tuple(resolve_all([claim["better"], claim["worse"]], cells, columns, excluded))]
    elif kind == "order":
        ranked = resolve_all(claim["cells"], cells, columns, excluded)
        pairs = list(zip(ranked, ranked[1:]))
    else:  # best / worst: the row against each other row of its column
        ref = claim["row"]
        (subject,) = resolve_all([ref], cells, columns, excluded)
        among = claim["among"]
        if among is None:  # default: every row the results have in this column
            among = [r for t, r, c in cells if t == subject.table and c == subject.column]
        others = resolve_all([{**ref, "column": subject.column, "row": r}
                               for r in dict.fromkeys(among) if r != subject.row], cells, columns, excluded)
        if not others:
            raise Unavailable(f"no other row in {subject.table} / {subject.column} to compare with")
        pairs = [(subject, other) if kind == "best" else (other, subject) for other in others]
    _check_preconditions(claim, [c for pair in pairs for c in pair], cells, facts)
    return [_greater(a, b, claim["margin"], claim["lower_is_better"], settings, claim) for a, b in pairs]


def _check_preconditions(claim: Mapping, used: list[Cell], cells: Cells, facts: Mapping | None) -> None:
    if facts is None:
        return
    means = {key: float(np.nanmean(_values(v))) if np.isfinite(_values(v)).any() else math.nan
             for key, v in cells.items()}
    keys = list(dict.fromkeys((c.table, c.row, c.column) for c in used))
    failure = failed_check(claim.get("mechanism"), keys, facts, means)
    if failure:
        raise Excluded(f"not testable at this scale ({claim.get('mechanism') or 'none'}): {failure}")


def _values(cell) -> np.ndarray:
    return cell.values if isinstance(cell, Sample) else np.asarray(cell, dtype=float)


def _adjust(judged: list[_ClaimTest]) -> list[_ClaimTest]:
    """Holm over the two hypotheses of every evaluated claim, written back into each claim."""
    adjusted = iter(holm(p for claim in judged for p in claim.p_values()))
    return [replace(claim, p_holm=float(next(adjusted)), p_reversed_holm=float(next(adjusted))) for claim in judged]


def _weakest(comparisons: list[_Comparison]) -> _Comparison:
    """The comparison closest to failing (lowest interval bound, or point, over its threshold):
    all of a claim's comparisons must hold, so this one's effect is the claim's."""
    def support(c: _Comparison) -> float:
        bound = c.ci[0] if math.isfinite(c.ci[0]) else c.effect
        if c.against == "outside":  # close: how far inside the band the interval stays
            high = c.ci[1] if math.isfinite(c.ci[1]) else c.effect
            return c.threshold - max(abs(bound), abs(high))
        return bound - c.threshold
    return min(comparisons, key=support)


def judge_claims(claims: Iterable[Mapping], cells: Cells, alpha: float = 0.05, test: str = "multibootstrap",
                 bootstrap_samples: int = 10000, seed: int = 0, correction: str = "holm",
                 excluded: Mapping[tuple[str, str, str], str] | None = None,
                 facts: Mapping[tuple[str, str, str], dict] | None = None) -> pd.DataFrame:
    """``excluded``: (table, row, column) -> why that cell measures nothing (``exclusions_from_provenance``);
    ``facts``: what the preconditions read per cell (``preconditions.facts_from_provenance``; None:
    no check). A claim that uses an excluded cell, or whose mechanism's check fails, is not
    testable, with the reason, and adds no test to Holm's family.
    One row per claim: verdict (uncorrected and Holm; ``correction`` picks ``verdict``), the
    effect of its weakest comparison with its interval, the comparisons behind it, the claim's
    p-values of "it holds" (``p``) and "it is significantly the other way" (``p_reversed``), raw
    and Holm-adjusted, the number of those it adds to the family (0-2), method, reason."""
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}.")
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}.")
    if not 0 < alpha < 0.5:  # the (1 - 2 alpha) interval needs alpha below one half
        raise ValueError(f"alpha must lie in (0, 0.5), got {alpha}.")
    if bootstrap_samples < 1:
        raise ValueError(f"bootstrap_samples must be positive, got {bootstrap_samples}.")
    settings = _Settings(alpha, test, int(bootstrap_samples), int(seed))
    columns = table_columns(cells)
    claims = validate_claims(claims)
    judged: list[_ClaimTest | Unavailable] = []
    for claim in claims:
        try:
            judged.append(_ClaimTest(tuple(_comparisons(claim, cells, columns, settings, excluded or {}, facts))))
        except Unavailable as missing:
            judged.append(missing)
    evaluated = _adjust([j for j in judged if not isinstance(j, Unavailable)])
    family = sum(claim.tests() for claim in evaluated)
    if test == "bootstrap" and correction == "holm" and family / (bootstrap_samples + 1) >= alpha:
        # A bootstrap p is at least 1/(B+1), so Holm's smallest adjusted p is at least family/(B+1).
        log.warning("claims: %d bootstrap samples cannot reach alpha %g after Holm over %d tests (the smallest "
                    "adjusted p is %d/(B+1)); raise claims.bootstrap_samples above %d.", bootstrap_samples, alpha,
                    family, family, math.ceil(family / alpha))
    evaluated = iter(evaluated)
    records = []
    for claim, outcome in zip(claims, judged):
        record = {**{k: claim[k] for k in ("id", "claim", "source", "kind")}, "mechanism": claim.get("mechanism", "")}
        if isinstance(outcome, Unavailable):
            missing = NOT_TESTABLE if isinstance(outcome, Excluded) else NOT_EVALUATED
            records.append({**record, "verdict": missing, "verdict_uncorrected": missing,
                            "verdict_holm": missing, "comparisons": "", "tests": 0, "method": "",
                            "reason": str(outcome)})
            continue
        claim_test = next(evaluated)
        comparisons = list(claim_test.comparisons)
        raw, adjusted = claim_test.verdict(alpha, adjusted=False), claim_test.verdict(alpha, adjusted=True)
        weakest = _weakest(comparisons)
        records.append({
            **record, "verdict": adjusted if correction == "holm" else raw, "verdict_uncorrected": raw,
            "verdict_holm": adjusted, "effect": weakest.effect, "ci_low": weakest.ci[0], "ci_high": weakest.ci[1],
            "comparisons": "; ".join(c.describe(alpha) for c in comparisons),
            "p": claim_test.p, "p_holm": claim_test.p_holm, "p_reversed": claim_test.p_reversed,
            "p_reversed_holm": claim_test.p_reversed_holm, "tests": claim_test.tests(),
            "method": ", ".join(dict.fromkeys(c.method for c in comparisons)),
            "seeds": ", ".join(dict.fromkeys(c.design for c in comparisons if c.design)),
            "floor": max((c.floor for c in comparisons if c.tested), default=math.nan), "reason": "",
        })
    return pd.DataFrame.from_records(records, columns=COLUMNS)


def check_claims(provenance_paths: Iterable[str | Path], csv_path: str | Path, md_path: str | Path,
                 claims_path: str | Path | None = None, alpha: float = 0.05, test: str = "multibootstrap",
                 bootstrap_samples: int = 10000, seed: int = 0, correction: str = "holm",
                 preconditions: bool = True) -> pd.DataFrame:
    """Load claims and cells, judge (each claim's mechanism checked first, unless ``preconditions``
    is off), write CSV and Markdown; returns the verdict frame."""
    provenance_paths = list(provenance_paths) if not isinstance(provenance_paths, (str, Path)) else [provenance_paths]
    frame = judge_claims(load_claims(claims_path), cells_from_provenance(provenance_paths), alpha=alpha,
                         test=test, bootstrap_samples=bootstrap_samples, seed=seed, correction=correction,
                         excluded=exclusions_from_provenance(provenance_paths),
                         facts=facts_from_provenance(provenance_paths) if preconditions else None)
    write_claims(frame, csv_path, md_path, alpha=alpha, test=test, correction=correction)
    return frame
