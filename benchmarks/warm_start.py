"""Warm start against cold jobs, side by side: the same DAG built twice from empty folders,
once with every job in its own Python process (warm_start: false) and once in forks of the warm
server (the default), alternating which goes first; then checks that both wrote the same weights
and the same fine-tuning scores.

    python benchmarks/warm_start.py                       # the micro config's whole DAG (tests/micro.yaml)
    python benchmarks/warm_start.py --default table7      # the default config, one table
    python benchmarks/warm_start.py --rounds 2 --cores 2  # more rounds: medians

Prints a Markdown table: wall time, jobs, job-seconds (the sum of the benchmark files' `s`),
seconds per job, and cold / warm.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MICRO = ROOT / "tests" / "micro.yaml"
TIMING_KEYS = {"seconds", "step_seconds", "peak_rss_mb", "collapse_retry"}  # vary run to run, or carry them


def build(workdir: Path, targets: list[str], configfiles: list[str], cores: int, warm: bool) -> dict:
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores",
               str(cores), *targets, "--config", f"warm_start={warm}"]
    if configfiles:
        command += ["--configfile", *configfiles]
    began = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if result.returncode:
        sys.exit(f"snakemake failed in {workdir}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    seconds = [float(path.read_text().splitlines()[1].split("\t")[0]) for path in workdir.glob("logs/**/*.benchmark.tsv")]
    served = workdir / "logs/warm_server.log"
    return {"wall": wall, "jobs": len(seconds), "job_seconds": sum(seconds),
            "warm_jobs": served.read_text().count(" job ") if served.exists() else 0}


def same_results(a: Path, b: Path) -> tuple[int, list[str]]:
    """Byte-identical weights and identical fine-tuning scores (timings aside): (files compared, differences)."""
    differences, compared = [], 0
    for weights in sorted(a.glob("results/pretrain/*/checkpoints/*/model.safetensors")):
        compared += 1
        if weights.read_bytes() != (b / weights.relative_to(a)).read_bytes():
            differences.append(str(weights.relative_to(a)))
    for metrics in sorted(a.glob("results/finetune/**/metrics.json")):
        compared += 1
        mine, theirs = (json.loads(p.read_text()) for p in (metrics, b / metrics.relative_to(a)))
        if {k: v for k, v in mine.items() if k not in TIMING_KEYS} != \
                {k: v for k, v in theirs.items() if k not in TIMING_KEYS}:
            differences.append(str(metrics.relative_to(a)))
    return compared, differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", help="Snakemake targets (default: the config's all)")
    parser.add_argument("--default", action="store_true", help="the default config.yaml instead of tests/micro.yaml")
    parser.add_argument("--configfile", nargs="*", default=None, help="config files merged over config.yaml")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="cold/warm pairs, alternating which goes first")
    args = parser.parse_args()
    configfiles = args.configfile if args.configfile is not None else ([] if args.default else [str(MICRO)])
    runs = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory(prefix="warm-bench-") as scratch:
        for round_ in range(args.rounds):
            order = ("cold", "warm") if round_ % 2 == 0 else ("warm", "cold")
            for mode in order:
                workdir = Path(scratch) / f"{mode}-{round_}"
                runs[mode].append(build(workdir, args.targets, configfiles, args.cores, warm=mode == "warm"))
                print(f"round {round_ + 1} {mode}: {runs[mode][-1]}", file=sys.stderr)
        compared, differences = same_results(Path(scratch) / "cold-0", Path(scratch) / "warm-0")
    median = {mode: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for mode, rs in runs.items()}
    print(f"{args.cores} cores, {args.rounds} round(s), medians; targets: {' '.join(args.targets) or 'all'}; "
          f"config: {', '.join(Path(c).name for c in configfiles) or 'config.yaml'}\n")
    print("| jobs run | wall s | jobs | in forks of the warm server | job-seconds | s per job |")
    print("|---|---|---|---|---|---|")
    for mode in ("cold", "warm"):
        m = median[mode]
        print(f"| {mode} | {m['wall']:.1f} | {m['jobs']:.0f} | {m['warm_jobs']:.0f} | {m['job_seconds']:.1f} | "
              f"{m['job_seconds'] / m['jobs']:.2f} |")
    print(f"\ncold / warm: wall {median['cold']['wall'] / median['warm']['wall']:.2f}x, job-seconds "
          f"{median['cold']['job_seconds'] / median['warm']['job_seconds']:.2f}x")
    print(f"same results: {compared - len(differences)} of {compared} files identical (weights byte for byte, "
          f"fine-tuning scores){'' if not differences else '; DIFFER: ' + ', '.join(differences[:5])}")


if __name__ == "__main__":
    main()
