"""Record a finished rehearsal for the README's preset table: what it measured, kept in the repo.

A rehearsal's outputs (``-d <folder>``) are not committed; this writes the few numbers the README's
rehearsal table quotes into ``benchmarks/rehearsals/<preset>.json``, from the folder's
``results/rehearsal.json`` (each rule's measured jobs and their full-run extrapolation) and
Snakemake's own log (the rehearsal's wall time), with the machine it ran on. Then
``python -m bert_ablation.preset_table --write-readme README.md`` puts it in the table.

    python benchmarks/record_rehearsal.py --preset paper --dir rehearsal/paper
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from bert_ablation.rehearsal_report import summarize  # noqa: E402
from bert_ablation.storage import write_json  # noqa: E402

DONE = "steps (100%) done"  # the last line of a Snakemake run that finished every job
# Snakemake stamps each job's start and end: "[Sun Dec  6 09:34:18 2026]"
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$", re.M)


def wall_seconds(log_text: str) -> float:
    """From the first to the last timestamp of one Snakemake log (one invocation)."""
    stamps = [datetime.datetime.strptime(" ".join(s.split()), "%a %b %d %H:%M:%S %Y") for s in STAMP.findall(log_text)]
    if len(stamps) < 2:
        raise ValueError("the Snakemake log has fewer than two timestamps: was the rehearsal run?")
    return (stamps[-1] - stamps[0]).total_seconds()


def rehearsal_logs(folder: Path) -> list[str]:
    """The Snakemake runs that built the rehearsal: the finished run with the most jobs (a later
    run that only rebuilt the report is not its time), after the unfinished runs just before it
    that it resumed (stopped by a full disk, say)."""
    logs = sorted((folder / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        raise FileNotFoundError(f"no Snakemake log under {folder}/.snakemake/log: run the rehearsal with -d {folder}")
    texts = [log.read_text() for log in logs]
    finished = [i for i, text in enumerate(texts) if DONE in text]
    if not finished:
        raise ValueError(f"{folder}: no Snakemake run finished every job of the rehearsal; rerun it to completion first")
    last = max(finished, key=lambda i: (texts[i].count("Finished jobid"), i))
    first = last
    while first > 0 and DONE not in texts[first - 1]:
        first -= 1
    return texts[first:last + 1]


def record(preset: str, folder: Path, machine: str, note: str = "") -> dict:
    report_path = folder / "results" / "rehearsal.json"
    if not report_path.exists():
        raise FileNotFoundError(f"{report_path} not found: the rehearsal did not finish (its last job, `rehearsal`, "
                                f"writes it)")
    report = json.loads(report_path.read_text())
    runs = rehearsal_logs(folder)
    rules = summarize(report["rows"])
    return {"preset": preset, "date": datetime.date.fromtimestamp(report_path.stat().st_mtime).isoformat(),
            "machine": machine, "note": note, "wall_seconds": sum(map(wall_seconds, runs)), "snakemake_runs": len(runs),
            # the DAG's jobs, from the first run's job stats ("total 112"); a resumed run redoes some
            "jobs": int(total.group(1)) if (total := re.search(r"^total\s+(\d+)$", runs[0], re.M))
            else sum(len(re.findall(r"^Finished jobid", text, re.M)) for text in runs),
            "benchmarked_jobs": report["jobs"], "vocabulary": report["tokenizer"], "rules": rules}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True, help="the preset's name (presets/<name>.yaml)")
    parser.add_argument("--dir", required=True, type=Path, help="the rehearsal's -d folder")
    parser.add_argument("--machine", default=f"{os.cpu_count()} CPU cores, no GPU",
                        help="what it ran on (default: this machine's core count)")
    parser.add_argument("--note", default="", help="anything that moved the time (other jobs beside it, say)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "rehearsals")
    args = parser.parse_args(argv)
    result = record(args.preset, args.dir, args.machine, args.note)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(str(args.out / f"{args.preset}.json"), result)
    print(f"{args.preset}: {result['jobs']} jobs in {result['wall_seconds'] / 60:.1f} min -> {args.out / args.preset}.json")


if __name__ == "__main__":
    main()
