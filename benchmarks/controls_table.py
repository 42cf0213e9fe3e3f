"""The controls table: each claim's verdict and effect on the default world beside the same claim
on control worlds without one mechanism (presets/control_<mechanism>.yaml), run with the same
pretraining seeds.

A claim that names the removed mechanism should stop being reproduced; a claim about a model
property (capacity, masking_mix) names no part of the world, so no control should move it: it is
the negative control. This script reads the claims CSVs of finished runs and writes the Markdown
table that docs/benchmark.md quotes, flagging both kinds of failure:

    python benchmarks/controls_table.py --default . \\
        --control right_context=results-control-right_context [--control ...] [--out controls.md]

Effects are the claims' own (the difference the claim tests, positive in the claimed direction)
with their intervals; with few pretraining seeds the verdicts cannot decide (docs/claims.md,
"Resolution"), so the effects are what moves.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

MODEL_PROPERTIES = ("capacity", "masking_mix")


def _effect(row) -> str:
    if row is None or not isinstance(row.get("effect"), float) or math.isnan(row["effect"]):
        return "–"
    interval = "" if math.isnan(row["ci_low"]) else f" [{row['ci_low']:+.2f}, {row['ci_high']:+.2f}]"
    return f"{row['effect']:+.2f}{interval}"


def _verdict(row) -> str:
    if row is None:
        return "absent"
    if row["verdict"] == "not testable":
        check = str(row.get("reason", "")).split(": ", 2)[-1].split(":")[0] if row.get("reason") else ""
        return f"not testable ({check})" if check else "not testable"
    return row["verdict"]


JUDGED = ("reproduced", "contradicted", "inconclusive")


def _interval(row) -> tuple[float, float] | None:
    if row is None or row["verdict"] not in JUDGED or math.isnan(row.get("ci_low", math.nan)):
        return None
    return float(row["ci_low"]), float(row["ci_high"])


def negative_control_moves(claim: str, mechanism: str, row, other, name: str) -> tuple[list[str], list[str]]:
    """(problems, notes) for a model-property claim between the default world and a control: its
    verdict moved, or its effect moved (both judged, their intervals apart), is a problem; a move
    into or out of "not testable" is a note, since that is a precondition (a run leaving the
    plateau in one world), not a verdict."""
    where = f"{claim} ({mechanism}, a model property)"
    if "not testable" in (row["verdict"], other["verdict"]):
        if row["verdict"] != other["verdict"]:
            return [], [f"{where}: {row['verdict']} -> {other['verdict']} without {name} (a precondition moved)"]
        return [], []
    if other["verdict"] != row["verdict"]:
        return [f"{where}: {row['verdict']} -> {other['verdict']} without {name}"], []
    a, b = _interval(row), _interval(other)
    if a and b and (a[1] < b[0] or b[1] < a[0]):
        return [f"{where}: effect {_effect(row)} -> {_effect(other)} without {name} (intervals apart)"], []
    return [], []


def controls_table(default: Path, controls: dict[str, Path]) -> tuple[str, list[str], list[str]]:
    """The Markdown table, the problems found (a removed mechanism's claim reproduced, a
    model-property claim whose verdict or effect moved) and notes (a model-property claim whose
    testability moved)."""
    base = pd.read_csv(default / "results" / "claims.csv").set_index("id")
    runs = {name: pd.read_csv(folder / "results" / "claims.csv").set_index("id") for name, folder in controls.items()}
    lines = ["| claim | mechanism | default: verdict, effect [CI] | "
             + " | ".join(f"without {name}: verdict, effect [CI]" for name in runs) + " |",
             "|---|---|---|" + "---|" * len(runs)]
    problems, notes = [], []
    for claim, row in base.iterrows():
        mechanism = row.get("mechanism", "")
        relevant = mechanism in runs or mechanism in MODEL_PROPERTIES
        if not relevant:
            continue
        cells = [f"{_verdict(row)}, {_effect(row)}"]
        for name, frame in runs.items():
            other = frame.loc[claim] if claim in frame.index else None
            cells.append(f"{_verdict(other)}, {_effect(other)}")
            if other is None:
                continue
            if mechanism == name and other["verdict"] == "reproduced":
                problems.append(f"{claim}: reproduced without its mechanism {name}")
            if mechanism in MODEL_PROPERTIES:
                found, noted = negative_control_moves(claim, mechanism, row, other, name)
                problems += found
                notes += noted
        lines.append(f"| `{claim}` | {mechanism}{' (negative control)' if mechanism in MODEL_PROPERTIES else ''} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n", problems, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--default", type=Path, required=True, help="folder of the default run (has results/)")
    parser.add_argument("--control", action="append", default=[], metavar="MECHANISM=FOLDER",
                        help="a control run: the removed mechanism and its folder")
    parser.add_argument("--out", type=Path, help="write the table here as well")
    args = parser.parse_args()
    controls = dict(entry.split("=", 1) for entry in args.control)
    table, problems, notes = controls_table(args.default, {k: Path(v) for k, v in controls.items()})
    found = [f"- PROBLEM: {p}" for p in problems] + [f"- NOTE: {n}" for n in notes]
    text = table + ("\n" + "\n".join(found) + "\n" if found else "")
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
