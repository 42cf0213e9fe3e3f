"""Is the GPU path right and fast? One command, at most ~8 minutes on one GPU:

    python benchmarks/gpu_check.py                # on a GPU machine; exits non-zero if a goal is missed
    python benchmarks/gpu_check.py --smoke        # seconds on a CPU: the same code paths, tiny shapes

What it checks, in one process (the resume and DDP checks start their own):
  throughput  ours vs the plain-HF reference (benchmarks/throughput.py, interleaved, same weights and
              rows) at tiny, mini and base shapes for mlm_nsp, ltr and SST-2 fine-tuning, with the
              first-batch loss check; MFU against the measured bf16 matmul peak (a big bf16 matmul);
              peak memory per step (torch.cuda.max_memory_allocated above the weights).
  levers      torch.compile (pretrain.compile) on vs off at one shape, compile time counted apart.
  syncs       host synchronisations inside one Engine.step (torch.cuda.set_sync_debug_mode), where
              each comes from: none may come from bert_ablation's code (CUDA only).
  resume      N steps uninterrupted against N/2, state saved, a new process resuming to N (dropout
              on, so the CUDA generators matter): the weights must agree within 3x the distance
              of two uninterrupted runs from each other (some GPU kernels are not bitwise
              deterministic).
  ddp         every GPU present under torchrun (when more than one): the same tokens as one process.
  rehearsal   the `small` preset's rehearsal run (``rehearse: true``), where the tree has that switch.

Goals (enforced without --smoke): ours >= 1.0x HF at tiny and mini, >= 1.5x at base; MFU >= 40%
at BERT-Base, seq 128, bf16 (mlm_nsp). Correctness (losses equal, no sync from our code, resume
equal, DDP complete) is enforced in both modes. Writes gpu_check.json and gpu_check.md (a table
for benchmarks/README.md) to --out (default $OUT if set, else results/gpu_check/).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput  # noqa: E402  (benchmarks/ is not a package: its sibling script, reused)

from bert_ablation import config as cfg  # noqa: E402
from bert_ablation import plan  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TORCH_DIR = str(Path(torch.__file__).parent)
GOALS = {"ratio": {"tiny": 1.0, "mini": 1.0, "base": 1.5}, "mfu_base_bf16": 0.40}
CASES = (("pretrain", "mlm_nsp"), ("pretrain", "ltr"), ("finetune", "mlm_nsp"))  # (mode, objective)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="CPU, tiny shapes, seconds: goals reported, not enforced")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=os.environ.get("OUT") or "results/gpu_check")
    p.add_argument("--sizes", default=None, help="throughput shapes (default tiny,mini,base; tiny with --smoke)")
    p.add_argument("--skip", default="", help="comma-separated sections to leave out: "
                   "throughput,levers,syncs,resume,ddp,rehearsal")
    args = p.parse_args(argv)
    args.sizes = (args.sizes or ("tiny" if args.smoke else "tiny,mini,base")).split(",")
    args.skip = {s for s in args.skip.split(",") if s}
    if not args.smoke and not args.device.startswith("cuda"):
        p.error("no GPU here: run with --smoke for the CPU check, or on a machine with CUDA")
    return args


def throughput_args(args, mode: str, objective: str, workdir: Path, *extra: str) -> argparse.Namespace:
    """throughput.py's own arguments for one case: the smoke shapes, or its GPU defaults."""
    argv = ["--mode", mode, "--objective", objective, "--sizes", ",".join(args.sizes), "--device", args.device,
            "--out", str(workdir / "throughput"), *extra]
    if args.smoke:
        argv += ["--smoke", "--threads", "1"]
    else:
        argv += ["--steps", "4", "--repeats", "3"]
    return throughput.parse_args(argv)


# ----------------------------------------------------------------------------- sections

def check_throughput(args, device, info, workdir: Path, report: dict) -> None:
    data = None
    rows = []
    for mode, objective in CASES:
        targs = throughput_args(args, mode, objective, workdir)
        if data is None:  # one world, vocabulary and instance store for every case
            world, tokenizer, batches = throughput.build_pretraining_data(targs, workdir)
            data = {"world": world, "tokenizer": tokenizer, "batches": batches}
        for size in targs.sizes:
            rows += throughput.benchmark(mode, size, targs, data, device, info)
    report["throughput"] = rows
    failures, missed = judge(rows, device.type == "cuda")
    report["failures"] += failures
    report["missed"] += missed


def judge(rows: list[dict], on_gpu: bool) -> tuple[list[str], list[str]]:
    """(correctness failures, goals missed) of throughput rows."""
    failures, missed = [], []
    for row in rows:
        if row["impl"] != "ours":
            continue
        case = f"{row['mode']}/{row['objective']}/{row['size']}"
        if not row["loss_equivalent"]:
            failures.append(f"{case}: first-batch loss {row['first_batch_loss']:.6g} differs from the "
                            f"reference's (rel {row['loss_rel_diff']:.2e})")
        goal = GOALS["ratio"].get(row["size"])
        if goal is not None and row["ratio_vs_ref"] < goal:
            missed.append(f"{case}: {row['ratio_vs_ref']:.2f}x the HF reference, goal >= {goal}x")
        if (row["size"], row["mode"], row["objective"], row["precision"]) == ("base", "pretrain", "mlm_nsp", "bf16") \
                and row["mfu"] < GOALS["mfu_base_bf16"]:
            missed.append(f"{case}: MFU {row['mfu']:.1%}, goal >= {GOALS['mfu_base_bf16']:.0%}")
    if on_gpu and not any((r["size"], r["mode"], r["objective"], r["precision"]) == ("base", "pretrain", "mlm_nsp", "bf16")
                          for r in rows if r["impl"] == "ours"):
        missed.append("no bf16 mlm_nsp pretraining row at base: the MFU goal was not measured")
    return failures, missed


def check_levers(args, device, info, workdir: Path, report: dict) -> None:
    """torch.compile on vs off, ours only, at one shape (mini on a GPU): steady tokens/s of each and
    the compile's warm-up seconds. Reported, not a goal: the default stays off until this shows
    it pays (config.schema.yaml, pretrain.compile)."""
    size = "tiny" if args.smoke else "mini"
    targs = throughput_args(args, "pretrain", "mlm_nsp", workdir, "--sizes", size)
    targs.sizes = [size]
    world, tokenizer, batches = throughput.build_pretraining_data(targs, workdir / "levers")
    steps = 1 + targs.repeats * targs.steps
    results = {}
    # On a CPU the compile alone takes minutes (measured: 159 s for the first tiny step, and it
    # recompiled for the next shapes), so the smoke check times the eager side only.
    for compiled in (False,) if args.smoke else (False, True):
        targs.compile = compiled
        ours, _, _ = throughput.pretraining_sides(size, targs, tokenizer, batches, device, steps + 1)
        began = time.perf_counter()
        ours.step(0)  # the first step: compiling (when on), kernel selection, allocations
        warmup = time.perf_counter() - began
        timed = [ours.step(k) for k in range(1, steps)]
        results["compile" if compiled else "eager"] = {
            "tokens_per_s": sum(t["tokens"] for t in timed) / sum(t["seconds"] for t in timed),
            "first_step_s": warmup}
    if "compile" in results:
        results["compile_speedup"] = results["compile"]["tokens_per_s"] / results["eager"]["tokens_per_s"]
    else:
        results["compile"] = "not timed with --smoke"
    report["levers"] = {"size": size, "objective": "mlm_nsp", "precision": ours.precision, **results}


def check_syncs(args, device, workdir: Path, report: dict) -> None:
    """Host synchronisations inside Engine.step (after a warm-up step), by where they are called from."""
    if device.type != "cuda":
        report["syncs"] = {"skipped": "CUDA only: torch.cuda.set_sync_debug_mode needs a GPU"}
        return
    targs = throughput_args(args, "pretrain", "mlm_nsp", workdir, "--sizes", "mini")
    targs.sizes = ["mini"]
    _, tokenizer, batches = throughput.build_pretraining_data(targs, workdir / "syncs")
    ours, _, _ = throughput.pretraining_sides("mini", targs, tokenizer, batches, device, 4)
    # pinned, as the training loop's prefetcher hands batches over: a copy from pageable memory
    # would be the benchmark's own sync, not the engine's
    batch = {k: v.pin_memory() for k, v in ours.batch(1).items()}
    ours.engine.step(ours.batch(0))
    torch.cuda.synchronize(device)
    seen = []  # (innermost frame, innermost bert_ablation frame or None) of each sync

    def record(message, category, filename, lineno, file=None, line=None):
        if "synchroniz" in str(message):
            # whose code asked for it: the innermost frame outside torch itself (a torch wrapper
            # such as F.cross_entropy only relays what its caller asked for)
            stack = [f for f in traceback.extract_stack()[:-1]
                     if TORCH_DIR not in f.filename and not f.filename.endswith("warnings.py")]
            caller = f"{stack[-1].filename}:{stack[-1].lineno}" if stack else f"{filename}:{lineno}"
            seen.append((caller, caller if "bert_ablation" in caller else None))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = record
        torch.cuda.set_sync_debug_mode("warn")
        try:
            ours.engine.step(batch)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    ours_sites = sorted({mine for _, mine in seen if mine})
    report["syncs"] = {"per_step": len(seen), "sites": sorted({site for site, _ in seen}),
                       "from_bert_ablation": ours_sites, "precision": ours.precision}
    if ours_sites:
        report["failures"].append(f"Engine.step syncs with the host from our code: {', '.join(ours_sites)}")


def build_world(workdir: Path, scale: float, steps: int, max_seq_length: int) -> tuple[dict, Path]:
    """The default world through the pipeline's own functions: corpus, tokenizer, instances."""
    from bert_ablation.data.corpus import build_corpus
    from bert_ablation.data.instances import build_instances
    from bert_ablation.data.tokenizer import build_tokenizer, count_words

    config = cfg.validate(cfg.deep_merge(cfg.load(str(ROOT / "config.yaml")), {
        "world": {"scale": scale},
        "instances": {"max_seq_length": max_seq_length, "dupe_factor": 1},
        "model": {"dropout": 0.1},  # dropout on: the generators' state matters
        "pretrain": {"steps": steps, "warmup_steps": 2, "state_every": steps // 2, "log_every": 2,
                     "save_steps": [], "eval_batches": 2, "tensorboard": False},
    }))
    root = workdir / "world"
    build_corpus(config, str(root / "corpus"))
    count_words(str(root / "corpus"), str(root / "counts.tsv"), lowercase=True)
    build_tokenizer([str(root / "counts.tsv")], str(root / "tokenizer"), config["tokenizer"])
    for packing in ("nsp_pairs", "contiguous"):
        build_instances(str(root / "corpus"), str(root / "tokenizer"), packing, config["instances"], str(root / packing))
    return config, root


def pretrain_kwargs(spec: dict, root: Path, out: Path, state_root: Path, device: str, **extra) -> dict:
    return dict(spec=spec, instances_dir=str(root / spec["packing"]), tokenizer_dir=str(root / "tokenizer"),
                checkpoints_dir=str(out / "checkpoints"), metrics_path=str(out / "metrics.json"),
                log_path=str(out / "log.csv"), state_root=str(state_root), threads=1, device=device, **extra)


# A fresh process per run, as a resumed job is: deterministic kernels where torch has them, so
# that two uninterrupted runs agree and a resumed one can be held to the same standard.
DETERMINISTIC_RUN = ("import sys, torch; torch.use_deterministic_algorithms(True, warn_only=True); "
                     "from bert_ablation.training.pretrain import main; main(sys.argv[1:])")


def run_pretrain(kwargs: dict, in_process: bool, workdir: Path) -> None:
    if in_process:
        from bert_ablation.training.pretrain import pretrain

        pretrain(**kwargs)
        return
    path = workdir / f"args-{len(list(workdir.glob('args-*.json')))}.json"
    path.write_text(json.dumps(kwargs))
    env = {**os.environ, "CUBLAS_WORKSPACE_CONFIG": ":4096:8", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", DETERMINISTIC_RUN, str(path)], env=env, capture_output=True,
                          text=True, timeout=300)
    if done.returncode:
        raise RuntimeError(f"pretraining process failed: {done.stderr[-2000:]}")


def weights(out: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(out / "checkpoints" / "final" / "model.safetensors")


def largest_difference(a: dict, b: dict) -> float:
    """The largest relative difference of any tensor of two state dicts."""
    return max(float((a[k].float() - b[k].float()).norm() / (a[k].float().norm() + 1e-12)) for k in a)


def check_resume(args, device, workdir: Path, report: dict) -> None:
    steps = 8 if args.smoke else 40
    config, root = build_world(workdir / "resume", 0.1 if args.smoke else 0.5, steps, 64 if args.smoke else 128)
    spec = plan.resolve_ablation(config, "bert_base")
    in_process = args.smoke  # CPU runs are deterministic in one process; a GPU run gets fresh processes
    runs = workdir / "resume" / "runs"
    for name, extra in (("whole", {}), ("again", {}), ("half", {"stop_after": steps // 2})):
        run_pretrain(pretrain_kwargs(spec, root, runs / name, runs / f"state-{name}", args.device, **extra),
                     in_process, workdir)
    # the second half: a new engine (a new process on the GPU) on the half run's saved state
    run_pretrain(pretrain_kwargs(spec, root, runs / "half", runs / "state-half", args.device), in_process, workdir)
    whole, again, resumed = (weights(runs / n) for n in ("whole", "again", "half"))
    noise, gap = largest_difference(whole, again), largest_difference(whole, resumed)
    metrics = json.loads((runs / "half" / "metrics.json").read_text())
    report["resume"] = {"steps": steps, "resumed_from_step": metrics["resumed_from_step"],
                        "uninterrupted_vs_uninterrupted": noise, "uninterrupted_vs_resumed": gap,
                        "bitwise_equal": all(torch.equal(whole[k], resumed[k]) for k in whole), "device": args.device}
    if metrics["resumed_from_step"] != steps // 2:
        report["failures"].append(f"resume: the second run started at step {metrics['resumed_from_step']}, "
                                  f"not {steps // 2}")
    if gap > 3 * noise + 1e-6:  # nondeterministic GPU kernels (index_add, embedding backward) leave some noise
        report["failures"].append(f"resume: resumed weights differ by {gap:.2e} (relative), two uninterrupted "
                                  f"runs by {noise:.2e}")


def check_ddp(args, device, workdir: Path, report: dict) -> None:
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    if gpus < 2:
        report["ddp"] = {"skipped": f"{gpus} GPU(s) here: DDP needs more than one (tests/test_distributed.py "
                                    "covers it on CPU with gloo)"}
        return
    from bert_ablation.training.distributed import torchrun_command

    config, root = build_world(workdir / "ddp", 0.5, 40, 128)
    spec = plan.resolve_ablation(config, "no_nsp")  # MLM only: the NSP head unused, as DDP must be told
    runs = workdir / "ddp" / "runs"
    run_pretrain(pretrain_kwargs(spec, root, runs / "single", runs / "state-single", "cuda"), False, workdir)
    kwargs = pretrain_kwargs(spec, root, runs / "ddp", runs / "state-ddp", None, threads=gpus)
    path = workdir / "ddp-args.json"
    path.write_text(json.dumps(kwargs))
    began = time.perf_counter()
    done = subprocess.run(torchrun_command(gpus, "bert_ablation.training.pretrain", str(path)), capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    seconds = time.perf_counter() - began
    if done.returncode:
        report["failures"].append(f"ddp over {gpus} GPUs failed: {done.stderr[-1500:]}")
        return
    single = json.loads((runs / "single" / "metrics.json").read_text())
    ddp = json.loads((runs / "ddp" / "metrics.json").read_text())
    moved = largest_difference(weights(runs / "single"), weights(runs / "ddp"))
    report["ddp"] = {"gpus": gpus, "seconds": seconds, "tokens_seen": ddp["tokens_seen"],
                     "tokens_per_second": ddp["tokens_per_second"], "single_tokens_per_second":
                     single["tokens_per_second"], "weights_vs_single": moved}
    if ddp["tokens_seen"] != single["tokens_seen"] or ddp["data_parallel_processes"] != gpus:
        report["failures"].append("ddp: not the single process's batches (tokens_seen or processes differ)")


def check_rehearsal(args, device, workdir: Path, report: dict) -> None:
    """The `small` preset's rehearsal (``rehearse: true``, docs/rehearsal.md) on a generated hub
    mirror, whole on a GPU; with --smoke, the same commands with a dry run (the DAG it would run)."""
    mirror = workdir / "mirror"
    generate = [sys.executable, "-m", "bert_ablation.data.mirrors", "--configfile", str(ROOT / "presets" / "small.yaml"),
                "--out", str(mirror)]
    # rehearse=True with a capital T: Snakemake's --config reads it as a boolean (true is text)
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir / "rehearsal"),
               "--cores", str(min(16, os.cpu_count() or 1)), "--configfile", str(ROOT / "presets" / "small.yaml"),
               "--config", "rehearse=True", f"hub_mirror={mirror}", *(["-n"] if args.smoke else [])]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    began = time.perf_counter()
    done = subprocess.run(generate, capture_output=True, text=True, timeout=120, env=env)
    if not done.returncode:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    report["rehearsal"] = {"seconds": time.perf_counter() - began, "returncode": done.returncode,
                           "dry_run": bool(args.smoke), "tail": (done.stdout + done.stderr)[-1500:]}
    if done.returncode:
        report["failures"].append("rehearsal of presets/small.yaml failed (see gpu_check.json, rehearsal.tail)")


# ----------------------------------------------------------------------------- reporting

def markdown(report: dict) -> str:
    info = report["machine"]
    lines = [f"gpu_check on {info['machine']} ({info['device']}), torch {info['torch']}, {info['date']}; "
             f"matmul peak bf16 {throughput.fmt(info['peak_bf16_gflops'], table=True) or 'n/a'} GFLOP/s, "
             f"fp32 {throughput.fmt(info['peak_fp32_gflops'], table=True)} GFLOP/s"
             + (" (--smoke: goals not enforced)" if report["smoke"] else ""), ""]
    if isinstance(report.get("throughput"), list):
        columns = [("mode", "mode"), ("objective", "objective"), ("size", "size"), ("impl", "impl"),
                   ("precision", "prec"), ("tokens_per_s", "tokens/s"), ("ratio_vs_ref", "ours/ref"),
                   ("mfu", "MFU"), ("step_mem_mb", "step mem MB"), ("loss_equivalent", "loss equal")]
        lines += ["| " + " | ".join(t for _, t in columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(throughput.fmt(r[k], table=True) for k, _ in columns) + " |"
                  for r in report["throughput"]]
        lines.append("")
    for section in ("levers", "syncs", "resume", "ddp", "rehearsal"):
        if section in report:
            lines.append(f"- **{section}**: " + json.dumps(report[section], default=str))
    lines += ["", f"Goals missed: {len(report['missed'])}" + "".join(f"\n- {m}" for m in report["missed"]),
              f"Correctness failures: {len(report['failures'])}" + "".join(f"\n- {m}" for m in report["failures"])]
    return "\n".join(lines) + "\n"


SECTIONS = {"throughput": check_throughput, "levers": check_levers, "syncs": check_syncs, "resume": check_resume,
            "ddp": check_ddp, "rehearsal": check_rehearsal}


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.smoke:
        torch.set_num_threads(1)
    began = time.perf_counter()
    info = throughput.machine(device, torch.get_num_threads(), 256 if args.smoke else 8192)
    report = {"smoke": args.smoke, "machine": info, "goals": GOALS, "failures": [], "missed": [], "seconds": {}}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for name, section in SECTIONS.items():
            if name in args.skip:
                report[name] = {"skipped": "--skip"}
                continue
            started = time.perf_counter()
            kwargs = (args, device, info, workdir, report) if name in ("throughput", "levers") else \
                (args, device, workdir, report)
            try:
                section(*kwargs)
            except Exception as error:  # one broken section must not hide the others' results
                report["failures"].append(f"{name}: {type(error).__name__}: {error}")
            report["seconds"][name] = round(time.perf_counter() - started, 1)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    report["seconds"]["total"] = round(time.perf_counter() - began, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "gpu_check.md").write_text(markdown(report))
    print(markdown(report))
    enforced = report["failures"] + ([] if args.smoke else report["missed"])
    return 1 if enforced else 0


if __name__ == "__main__":
    sys.exit(main())
