"""Tests of one difference between two cells: Welch, the restart bootstrap, and the Multi-Bootstrap.

A cell is a ``Sample``: its values (every pretraining seed's restarts) and the pretraining seed of
each value. Two sources of noise sit in it: the pretraining draw (init, data order, masks) and the
fine-tuning draw (head init, batch order). Welch and the plain bootstrap treat every value as an
independent draw, which is right only when each arm was pretrained once and the question is about
that one run; with one pretraining run per arm they cannot see the pretraining draw at all.

The Multi-Bootstrap (Sellam et al., "The MultiBERTs", ICLR 2022) resamples both levels together:
pretraining seeds with replacement, then restarts with replacement within each drawn seed, and
compares the arms' means. Where both arms were pretrained at the same seeds (this workflow gives
seed k of every ablation the same seed), the seeds are drawn once for both arms: a paired design,
in which what a seed does to both arms cancels.

Resolution. A resampling test can be no surer than the arrangements of its top-level units
allow: under "no difference", the arms' seed-level results are exchangeable, so no test that
assumes nothing more can give a p below 1 / (the number of their arrangements): 2^-n for n paired
seeds (the signs of n seed differences), 1 / C(n_a + n_b, n_a) for unpaired seeds, and the same
over restarts when each arm has one seed. The bootstrap's own p ignores this (with 3 paired seeds
all in one direction it says 1/10,001 where a sign-flip test says 1/8), so the Multi-Bootstrap's p
is never reported below its design's ``floor``: an instrument states its resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

TESTS = ("multibootstrap", "welch", "bootstrap")


@dataclass(frozen=True)
class Sample:
    """A cell's values and the pretraining seed (a label) of each; one seed label = one run."""
    values: np.ndarray
    seeds: np.ndarray

    @classmethod
    def of(cls, values, seeds=None) -> "Sample":
        values = np.asarray(values, dtype=float)
        seeds = np.zeros(len(values), dtype=object) if seeds is None else np.asarray(seeds, dtype=object)
        if len(seeds) != len(values):
            raise ValueError(f"{len(values)} values but {len(seeds)} seed labels.")
        return cls(values, seeds)

    def finite(self) -> "Sample":
        keep = np.isfinite(self.values)
        return Sample(self.values[keep], self.seeds[keep])

    def seed_labels(self) -> list:
        return list(dict.fromkeys(self.seeds.tolist()))

    def seed_means(self) -> np.ndarray:
        return np.array([self.values[self.seeds == s].mean() for s in self.seed_labels()])


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values, in input order; NaN entries are not tests and stay NaN.

    The k-th smallest of m p-values is multiplied by (m - k + 1), made non-decreasing along the
    ranking and capped at 1; rejecting where the adjusted p < alpha keeps the family-wise error
    <= alpha under any dependence between the tests.
    """
    p = np.asarray(list(p_values), dtype=float)
    out = np.full(p.shape, math.nan)
    index = np.flatnonzero(~np.isnan(p))
    order = index[np.argsort(p[index], kind="stable")]
    m = len(order)
    out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out


def welch_interval(a: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float]:
    """Welch's t interval of mean(a) - mean(b): unequal variances, Welch-Satterthwaite df."""
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = stats.t.ppf(0.5 + confidence / 2, df) * math.sqrt(va + vb)
    diff = float(np.mean(a) - np.mean(b))
    return diff - half, diff + half


@dataclass(frozen=True)
class Design:
    """What the Multi-Bootstrap resampled: ``units`` ("seeds" or "restarts"), paired or not, the
    seeds per arm, and the smallest p the design can give (``floor``)."""
    units: str
    paired: bool
    seeds: tuple[int, int]
    floor: float

    def describe(self) -> str:
        if self.units == "restarts":
            return "1 pretraining seed per arm: restarts resampled, pretraining variance ignored"
        pairing = f"{self.seeds[0]} paired seeds" if self.paired else f"{self.seeds[0]} vs {self.seeds[1]} seeds"
        return f"{pairing} x restarts resampled"


def design(a: Sample, b: Sample) -> Design:
    sa, sb = a.seed_labels(), b.seed_labels()
    if len(sa) == 1 and len(sb) == 1:
        return Design("restarts", False, (1, 1), 1 / math.comb(len(a.values) + len(b.values), len(a.values)))
    if set(sa) == set(sb):
        return Design("seeds", True, (len(sa), len(sb)), 2.0 ** -len(sa))
    return Design("seeds", False, (len(sa), len(sb)), 1 / math.comb(len(sa) + len(sb), len(sa)))


def _grouped(sample: Sample, order: list) -> tuple[np.ndarray, np.ndarray]:
    """The values as a (seeds x most restarts) matrix, NaN-padded, in ``order``, and each seed's count."""
    groups = [sample.values[sample.seeds == s] for s in order]
    counts = np.array([len(g) for g in groups])
    matrix = np.full((len(groups), counts.max()), np.nan)
    for row, group in enumerate(groups):
        matrix[row, :len(group)] = group
    return matrix, counts


def _resampled_means(matrix: np.ndarray, counts: np.ndarray, seed_draws: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """The mean of each resample: seeds ``seed_draws`` (resamples x seeds), then within each drawn
    seed as many restarts as it has, drawn with replacement."""
    drawn_counts = counts[seed_draws]  # (B, n)
    width = matrix.shape[1]
    restart = np.floor(rng.random((*seed_draws.shape, width)) * drawn_counts[..., None]).astype(int)
    valid = np.arange(width)[None, None, :] < drawn_counts[..., None]
    values = np.where(valid, matrix[seed_draws[..., None], restart], 0.0)
    return values.sum(axis=(1, 2)) / valid.sum(axis=(1, 2))


def multibootstrap(a: Sample, b: Sample, samples: int, rng: np.random.Generator) -> tuple[np.ndarray, Design]:
    """Resampled differences mean(a) - mean(b) over pretraining seeds and restarts, and the design."""
    how = design(a, b)
    if how.units == "restarts":
        diffs = (a.values[rng.integers(0, len(a.values), (samples, len(a.values)))].mean(axis=1)
                 - b.values[rng.integers(0, len(b.values), (samples, len(b.values)))].mean(axis=1))
        return diffs, how
    order_a = a.seed_labels()
    order_b = order_a if how.paired else b.seed_labels()
    ma, ca = _grouped(a, order_a)
    mb, cb = _grouped(b, order_b)
    draws_a = rng.integers(0, len(order_a), (samples, len(order_a)))
    draws_b = draws_a if how.paired else rng.integers(0, len(order_b), (samples, len(order_b)))
    return _resampled_means(ma, ca, draws_a, rng) - _resampled_means(mb, cb, draws_b, rng), how


class Difference:
    """The test of mean(a) - mean(b) against shifts, and its interval, for one comparison."""

    def __init__(self, a: Sample, b: Sample, test: str, alpha: float, samples: int, rng: np.random.Generator):
        self.a, self.b, self.test, self.alpha = a, b, test, alpha
        self.effect = float(a.values.mean() - b.values.mean())
        self.design: Design | None = None
        if test == "multibootstrap":
            self.diffs, self.design = multibootstrap(a, b, samples, rng)
        elif test == "bootstrap":
            # One seeded set of resamples per comparison: the TOST bounds and the interval share it.
            av, bv = a.values, b.values
            self.diffs = (av[rng.integers(0, len(av), (samples, len(av)))].mean(axis=1)
                          - bv[rng.integers(0, len(bv), (samples, len(bv)))].mean(axis=1))

    @property
    def floor(self) -> float:
        return self.design.floor if self.design else 0.0

    def one_sided_p(self, shift: float) -> tuple[float, float]:
        """p-values for H1: mean(a) - mean(b) > shift, and for H1: mean(a) - mean(b) < shift."""
        if self.test == "welch":
            greater = stats.ttest_ind(self.a.values - shift, self.b.values, equal_var=False,
                                      alternative="greater").pvalue
            return float(greater), float(1.0 - greater)  # Welch's two one-sided p-values sum to one
        n = len(self.diffs)
        # +1: a Monte-Carlo p-value is never exactly zero; the floor: the design's resolution.
        below = (np.sum(self.diffs <= shift) + 1) / (n + 1)
        above = (np.sum(self.diffs >= shift) + 1) / (n + 1)
        return float(max(below, self.floor)), float(max(above, self.floor))

    def interval(self) -> tuple[float, float]:
        """Two-sided (1 - 2 alpha) interval: Welch's t interval, or the resamples' percentiles."""
        if self.test == "welch":
            return welch_interval(self.a.values, self.b.values, 1 - 2 * self.alpha)
        low, high = np.quantile(self.diffs, [self.alpha, 1 - self.alpha])
        return float(low), float(high)


def seeds_needed(alpha: float, tests: int = 1) -> int:
    """The fewest paired seeds whose resolution 2^-n lies below alpha / tests (Holm's first step)."""
    return math.floor(math.log2(tests / alpha)) + 1
