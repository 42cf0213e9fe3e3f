"""Record a finished rehearsal for the README's preset table: what it measured, kept in the repo.

A rehearsal's outputs (``-d <folder>``) are not committed; this writes the few numbers the README's
rehearsal table quotes into ``benchmarks/rehearsals/<preset>.json``, from the folder's
``results/rehearsal.json`` (each rule's measured jobs and their full-run extrapolation) and
Snakemake's own log (the rehearsal's wall time), with the machine it ran on. Then
``python -m bert_ablation.estimate --write-readme README.md`` puts it in the table.

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

from bert_ablation.rehearsal import summarize  # noqa: E402
from bert_ablation.storage import write_json  # noqa: E402

# Snakemake stamps each job's start and end: "[Sun Dec  6 09:34:18 2026]"
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$", re.M)


def wall_seconds(log_text: str) -> float:
    """From the first to the last timestamp of one Snakemake log (one invocation)."""
    stamps = [datetime.datetime.strptime(" ".join(s.split()), "%a %b %d %H:%M:%S %Y") for s in STAMP.findall(log_text)]
    if len(stamps) < 2:
        raise ValueError("the Snakemake log has fewer than two timestamps: was the rehearsal run?")
    return (stamps[-1] - stamps[0]).total_seconds()


def rehearsal_log(folder: Path) -> Path:
    """The Snakemake run that built the rehearsal: the one that finished the most jobs (a later
    run that only rebuilt the report, say, is not its time), the latest of equals."""
    logs = sorted((folder / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        raise FileNotFoundError(f"no Snakemake log under {folder}/.snakemake/log: run the rehearsal with -d {folder}")
    return max(reversed(logs), key=lambda log: log.read_text().count("Finished jobid"))


def record(preset: str, folder: Path, machine: str, note: str = "") -> dict:
    report_path = folder / "results" / "rehearsal.json"
    if not report_path.exists():
        raise FileNotFoundError(f"{report_path} not found: the rehearsal did not finish (its last job, `rehearsal`, "
                                f"writes it)")
    report = json.loads(report_path.read_text())
    log = rehearsal_log(folder)
    text = log.read_text()
    if "steps (100%) done" not in text:
        raise ValueError(f"{log}: the last Snakemake run did not finish every job; rerun it to completion first")
    rules = summarize(report["rows"])
    for rule, summary in rules.items():  # what was measured beside what is extrapolated
        measured = [r["measured_rss_mb"] for r in report["rows"] if r["rule"] == rule and r.get("measured_rss_mb")]
        summary["measured_rss_mb"] = max(measured) if measured else None
        disks = [r["full_disk_gb"] for r in report["rows"] if r["rule"] == rule and r.get("full_disk_gb") is not None]
        summary["disk_gb"] = sum(disks) if disks else None  # every run's checkpoints and state, extrapolated
    return {"preset": preset, "date": datetime.date.fromtimestamp(log.stat().st_mtime).isoformat(),
            "machine": machine, "note": note, "wall_seconds": wall_seconds(text),
            "jobs": len(re.findall(r"^Finished jobid", text, re.M)),
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
