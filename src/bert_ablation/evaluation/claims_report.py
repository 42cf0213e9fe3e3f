"""The claims' report: the verdict frame (claims.judge_claims) as CSV and Markdown, with the
summary line and the note on what the design can resolve."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..storage import atomic_file
from .claim_spec import NOT_EVALUATED, NOT_TESTABLE, VERDICTS
from .statistics import seeds_needed


def describe_test(test: str, alpha: float, correction: str = "holm", tests: int | None = None) -> str:
    name = {"welch": "one-sided Welch t-test", "bootstrap": "one-sided percentile bootstrap",
            "multibootstrap": "one-sided Multi-Bootstrap over pretraining seeds and restarts"}[test]
    family = "" if tests is None else f" over {tests} tests"
    how = f"Holm-adjusted{family}" if correction == "holm" else f"no multiplicity correction{family}"
    return f"{name}, alpha {alpha:g}, {how}"


def _counts(verdicts: pd.Series) -> str:
    counts = verdicts.value_counts()
    return ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS
                     if v not in (NOT_EVALUATED, NOT_TESTABLE) or counts.get(v, 0))


def resolution_note(frame: pd.DataFrame, alpha: float, test: str) -> str:
    """What the design can resolve: pretraining seeds behind the verdicts, and the smallest p."""
    if test != "multibootstrap":
        return ("Restart-level test: every value counts as an independent draw, so a difference between two "
                "pretraining runs' seeds reads as a difference between their ablations.")
    tested = frame[frame["tests"] > 0]
    if tested.empty:
        return ""
    seeds = ", ".join(dict.fromkeys(x for d in tested["seeds"] for x in str(d).split(", ") if x))
    floor = float(tested["floor"].min())
    family = int(frame["tests"].sum())
    note = f"Resolution: {seeds}; no p can fall below {floor:.3g} with this design (statistics.py, \"Resolution\")."
    if "pretraining variance ignored" in seeds:
        note += (" With one pretraining seed per ablation the verdicts ignore pretraining variance: they say "
                 "whether these two runs differ, not whether their ablations do (pretrain.seeds).")
    if floor >= alpha / max(family, 1):
        note += (f" Holm over {family} tests needs p below {alpha / max(family, 1):.2g} for its first rejection: "
                 f"at least {seeds_needed(alpha, family)} paired pretraining seeds "
                 f"({seeds_needed(alpha)} without correction).")
    return note


def summary_line(frame: pd.DataFrame, alpha: float, test: str, correction: str = "holm") -> str:
    tests = int(frame["tests"].sum()) if "tests" in frame else None
    return f"{_counts(frame['verdict'])} of {len(frame)} claims ({describe_test(test, alpha, correction, tests)})"


def _md_cell(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.2g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_effect(r) -> str:
    if math.isnan(r.effect):
        return ""
    return f"{r.effect:+.2f}" + ("" if math.isnan(r.ci_low) else f" [{r.ci_low:+.2f}, {r.ci_high:+.2f}]")


def to_markdown(frame: pd.DataFrame, alpha: float, test: str, correction: str = "holm") -> str:
    other, other_column = ("uncorrected", "verdict_uncorrected") if correction == "holm" else ("Holm", "verdict_holm")
    level = f"{100 * (1 - 2 * alpha):g}%"
    interval = "Welch t interval" if test == "welch" else "percentile bootstrap interval"
    testable = frame[frame["verdict"] != NOT_TESTABLE]
    untestable = frame[frame["verdict"] == NOT_TESTABLE]
    lines = [
        "**Claims of the paper, judged on our results.**", "",
        summary_line(frame, alpha, test, correction) + f". {other.capitalize()}: {_counts(frame[other_column])}.", "",
        resolution_note(frame, alpha, test), "",
        "Each comparison is ours: mean±sd over every pretraining seed's restarts (seeds, n). Cells with one "
        "value (perplexity of one run) or no variance are compared as points; `close` claims use two one-sided "
        "tests (TOST) against the stated tolerance. `verdict` is the "
        + ("Holm-adjusted" if correction == "holm" else "uncorrected") + " one (`claims.correction`). A claim "
        "holds only if all its comparisons do: p is the largest of their p-values (intersection-union test); "
        "p reversed is the smallest reverse or outside p times their number. Holm adjusts over these two "
        "p-values of every tested claim (`tests` in the CSV), keeping the chance of any false reproduced or "
        f"contradicted verdict below alpha. Effect: the difference the claim tests, positive in the claimed "
        f"direction, with its two-sided {level} {interval} (unadjusted; for `order`, `best` and `worst` claims, "
        "of the comparison closest to failing); it must exceed the margin (lie within ± the tolerance for "
        "`close`).", "",
        f"## Testable at this scale ({len(testable)})", "",
        f"| id | claim | verdict | uncorrected | Holm | effect [{level} CI] | comparisons | p | p (Holm) "
        "| p reversed | p reversed (Holm) | source |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in testable.itertuples():
        detail = r.comparisons or f"not evaluated: {r.reason}"
        lines.append("| " + " | ".join(_md_cell(v) for v in (
            r.id, r.claim, r.verdict, r.verdict_uncorrected, r.verdict_holm, _md_effect(r), detail, r.p, r.p_holm,
            r.p_reversed, r.p_reversed_holm, r.source)) + " |")
    if len(untestable):
        lines += ["", f"## Not testable at this scale ({len(untestable)})", "",
                  "What the claim rests on did not form in the runs it compares (a run that did not learn, or a "
                  "failed check of its mechanism: `bert_ablation.facts.mechanisms.PRECONDITIONS`), so a verdict "
                  "would compare noise. The check and its value:", "",
                  "| id | claim | mechanism | why not testable | source |", "|---|---|---|---|---|"]
        lines += ["| " + " | ".join(_md_cell(v) for v in (r.id, r.claim, r.mechanism, r.reason, r.source)) + " |"
                  for r in untestable.itertuples()]
    return "\n".join(lines) + "\n"


def write_claims(frame: pd.DataFrame, csv_path: str | Path, md_path: str | Path, alpha: float = 0.05,
                 test: str = "multibootstrap", correction: str = "holm") -> None:
    # `verdict` follows `correction` here, whichever correction the frame was judged with.
    frame = frame.assign(verdict=frame["verdict_holm" if correction == "holm" else "verdict_uncorrected"])
    with atomic_file(csv_path) as handle:
        frame.to_csv(handle, index=False, float_format="%.4g")
    with atomic_file(md_path) as handle:
        handle.write(to_markdown(frame, alpha, test, correction))

