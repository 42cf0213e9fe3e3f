"""A rehearsal's report: what its jobs measured, extrapolated to the full run's time, memory and disk.

``report(...)`` (the ``rehearsal`` rule) turns what the rehearsal's jobs measured (step time and
peak memory in their metrics.json, Snakemake's benchmark files) into each rule's full-run time,
memory and disk, beside what the cluster profile requests (``profile_requests``); ``markdown``
and ``summarize`` render it, per job and per rule. Torch-free, as the plan layer is. The
rehearsal itself, the config with its budgets shrunk, is rehearsal.py's.
"""

from __future__ import annotations

import glob
import json
import math
import os
import statistics

from . import estimate as cost
from . import plan
from .estimate import duration, estimate, layer_parameters
from .storage import atomic_file, write_json

# The hub datasets' split sizes (examples), for the full-run fine-tuning estimate: a rehearsal
# reads a few examples from a mirror and cannot count them. From the datasets' cards.
HUB_SIZES = {
    "mnli": {"train": 392_702, "validation_matched": 9_815, "validation_mismatched": 9_832},
    "qnli": {"train": 104_743, "validation": 5_463},
    "mrpc": {"train": 3_668, "validation": 408},
    "sst2": {"train": 67_349, "validation": 872},
    "cola": {"train": 8_551, "validation": 1_043},
    "stsb": {"train": 5_749, "validation": 1_500},
    "qqp": {"train": 363_846, "validation": 40_430},
    "rte": {"train": 2_490, "validation": 277},
    "squad": {"train": 87_599, "validation": 10_570},
    "conll2003": {"train": 14_041, "validation": 3_250, "test": 3_453},
}


MB = 1 << 20
ADAM_BYTES = 16  # per parameter while training: fp32 weights, gradients and Adam's two moments


def _benchmark(path: str) -> dict:
    """Snakemake's benchmark file of one job: seconds and peak RSS (MB)."""
    with open(path, encoding="utf-8") as handle:
        header, values = handle.read().splitlines()[:2]
    row = dict(zip(header.split("\t"), values.split("\t")))
    return {"seconds": float(row["s"]), "max_rss_mb": float(row["max_rss"]) if row.get("max_rss", "-") != "-" else None}


def _tree_bytes(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def _read_json(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def profile_requests(profile: dict | None, rule_resources: dict) -> dict:
    """What a cluster profile asks for each rule's first attempt: its set-resources, else its
    default-resources, else the rule's own resources. Values are the profile's Python
    expressions, evaluated with attempt 1; one that names anything else is shown as written."""
    profile = profile or {}
    defaults, overrides = profile.get("default-resources", {}) or {}, profile.get("set-resources", {}) or {}
    out = {}
    for rule, own in rule_resources.items():
        merged = {**own, **defaults, **(overrides.get(rule) or {})}
        values = {}
        for key in ("mem_mb", "runtime", "gpu"):
            value = merged.get(key)
            if isinstance(value, str):
                try:
                    value = eval(value, {"__builtins__": {}}, {"attempt": 1})  # noqa: S307 (the profile's own syntax)
                except Exception:  # noqa: BLE001 (a function of the job: shown as written)
                    pass
            values[key] = value
        out[rule] = values
    return out


def _scaled(measured: float, startup: float, factor: float | None) -> float | None:
    """A job's time at ``factor`` times the work: the startup (imports) once, the rest linear."""
    if factor is None:
        return None
    return startup + max(measured - startup, 0.0) * factor


# A process's resident set once torch, transformers and datasets are imported (measured on the
# 2-core VM: 457 MB); it does not grow with the batch.
PROCESS_MB = 450


def _memory(peak_mb: float, parameters: int, micro_ratio: float, on_gpu: bool) -> float:
    """Peak memory at another micro-batch: the training state (16 bytes a parameter) and, on CPU,
    the process itself stay; the rest (activations) is scaled by the micro-batch ratio, an upper
    bound (the measured peak also holds the data, the evaluation and allocator slack)."""
    fixed = parameters * ADAM_BYTES / MB + (0 if on_gpu else PROCESS_MB)
    return fixed + max(peak_mb - fixed, 0.0) * micro_ratio


def _full_examples(config: dict, task: str, split: str) -> int | None:
    settings = config["tasks"][task]
    if settings["source"] == "world":
        n = settings["n_train"] if split == "train" else settings["n_dev"]
        return max(1, round(n * config["world"]["scale"]))
    if settings["source"] == "hub" and not settings["hub"]:
        cap = settings["max_train_examples" if split == "train" else "max_eval_examples"]
        size = HUB_SIZES.get(task, {}).get(split)
        return size if cap is None or size is None else min(cap, size)
    return None  # local files or another hub dataset: unknown until read


def report(full: dict, rehearsed: dict, requests: dict, root: str = ".") -> dict:
    """Each rule's measured rehearsal and its extrapolated full run, beside the profile's requests."""

    at = lambda *parts: os.path.join(root, *parts)  # noqa: E731
    benchmarks = {os.path.relpath(p, at("logs")): _benchmark(p) for p in glob.glob(at("logs", "**", "*.benchmark.tsv"),
                                                                                      recursive=True)}
    # The fixed cost of a job (Python, imports): the fastest job of the rehearsal, a lower bound.
    startup = min((b["seconds"] for b in benchmarks.values()), default=0.0)
    full_estimate = estimate(full)
    settings = full["estimate"]
    flops_per_second = settings["mfu"] * settings["peak_tflops"] * 1e12
    rows = []

    # Data stages: a mirror's few hundred documents leave mostly a job's fixed cost (imports,
    # load_dataset) in its measured time, so the corpus stages' full-run time comes from their
    # measured rates per MB (estimate.data_stage_seconds, benchmarks/data_stages.py), the same
    # numbers that size their requests; the rehearsal shows they run at the real shapes and
    # measures their memory. A task job scales with its examples (an upper bound: fixed cost included).
    for name, b in sorted(benchmarks.items()):
        rule = name.split(os.sep)[0].split(".")[0]
        request = requests.get(rule, {})
        if rule in cost.DATA_RULES:
            seconds, how = cost.data_stage_seconds(full, rule)
            basis = f"the data stages' measured rates (benchmarks/data_stages.py): {how}"
            request = {**request, **cost.data_request(full, rule)}
        elif rule == "tasks":
            task = os.path.basename(name).split(".")[0]
            n, done = _full_examples(full, task, "train"), rehearsed["tasks"][task]["max_train_examples"]
            factor = n / min(done, n) if n and done else None
            basis = (f"x{factor:,.0f} the examples, an upper bound (the job's fixed cost scaled too)" if factor
                     else "unknown: the full task size is not known")
            seconds = _scaled(b["seconds"], startup, factor)
        elif rule == "checkpoints":
            rule, basis = "import_checkpoint", "the real shapes: as measured (download not included)"
            seconds, request = b["seconds"], requests.get(rule, {})
        else:
            continue
        rows.append({"rule": rule, "job": name.removesuffix(".benchmark.tsv"), "device": "cpu",
                     "measured_seconds": b["seconds"], "measured_rss_mb": b["max_rss_mb"],
                     "full_seconds": seconds, "full_gpu_seconds": None,
                     "full_memory_mb": b["max_rss_mb"] if rule in ("import_checkpoint",) else None,
                     "upper_bound": rule == "tasks", "basis": basis, "request": request})

    # Pretraining: each phase's measured step at the real length, times the full run's steps and
    # batch; GPU time from the estimate's FLOPs at its MFU (or the measured steps, on a GPU).
    runs = {r["ablation"]: r for r in full_estimate["runs"]}
    for name in plan.pretrain_runs(full):
        path = at("results", "pretrain", name, "metrics.json")
        if not os.path.exists(path):
            continue
        metrics = _read_json(path)
        small = plan.resolve_ablation(rehearsed, name)["pretrain"]
        big = plan.resolve_ablation(full, name)["pretrain"]
        steps = metrics.get("step_seconds") or []
        first = metrics["resumed_from_step"]
        phases = [(small["short_seq_steps"], min(big["short_seq_steps"], big["steps"]), "short"),
                  (small["steps"], big["steps"] - min(big["short_seq_steps"], big["steps"]), "main")]
        begin, seconds, per_phase = 0, 0.0, {}
        for end, full_steps, label in phases:
            measured = steps[max(begin - first, 0): max(end - first, 0)]
            begin = end
            if full_steps and measured:
                # the phase's last step: the first ones pay for allocations and warm caches
                per_phase[label] = measured[-1]
                seconds += full_steps * measured[-1] * big["batch_size"] / small["batch_size"]
        micro = (big["batch_size"] / big["accumulation_steps"]) / (small["batch_size"] / small["accumulation_steps"])
        peak = metrics.get("peak_gpu_mb") or metrics.get("peak_rss_mb")
        checkpoint = _tree_bytes(at("results", "pretrain", name, "checkpoints", "final"))
        states = glob.glob(at("state", "pretrain", name, "*", "state.pt"))
        on_gpu = metrics["device"].startswith("cuda")
        rows.append({
            "rule": "pretrain", "job": name, "device": metrics["device"],
            "measured_seconds": sum(steps), "measured_step_seconds": per_phase,
            "measured_rss_mb": metrics.get("peak_rss_mb"), "measured_gpu_mb": metrics.get("peak_gpu_mb"),
            "parameters": metrics["parameters"], "micro_batch": (small["batch_size"] // small["accumulation_steps"],
                                                                 big["batch_size"] // big["accumulation_steps"]),
            "full_seconds": seconds if per_phase else None,
            "full_gpu_seconds": seconds if on_gpu and per_phase else runs[name]["flops"] / flops_per_second,
            "full_memory_mb": _memory(peak, metrics["parameters"], micro, on_gpu) if peak else None,
            "full_disk_gb": (checkpoint * (1 + len(big["save_steps"])) + sum(map(os.path.getsize, states[:1]))) / 1e9,
            "basis": (f"steps x the last measured step of each phase x {big['batch_size']}/{small['batch_size']} "
                      f"sequences; GPU: {'measured' if on_gpu else 'FLOPs at ' + full_estimate['assumption']}"),
            # the rule's own request, sized by the plan (estimate.pretrain_request) for the full run
            "request": {**requests.get("pretrain", {}), **cost.pretrain_request(full, name)},
            "gpu_memory_mb": settings["gpu_memory_gb"] * 1000})

    # Fine-tuning: per (model, task, head) the longest job of the full grid (the smallest batch,
    # the most epochs), all its restarts; from the measured step and the measured evaluation.
    for path in sorted(glob.glob(at("results", "finetune", "**", "metrics.json"), recursive=True)):
        metrics = _read_json(path)
        task, head = metrics["task"], metrics["head"]
        source = metrics["checkpoint"]
        checkpoint_params = _checkpoint_parameters(at(source) if not os.path.isabs(source) else source)
        points = plan.grid_points(full, task, head)
        longest = min(points, key=lambda p: (p.batch_size, -p.epochs))
        hp = metrics["hyperparameters"]
        steps = metrics.get("step_seconds") or []
        n_full = _full_examples(full, task, "train")
        ratio = metrics["train_features"] / max(metrics["train_examples"], 1)  # SQuAD: windows per question
        step = statistics.median(steps) if steps else None
        train_seconds = sum(steps)
        evaluation = max(metrics["seconds"] - train_seconds, 0.0)
        dev_full = _full_examples(full, task, metrics["dev_split"])
        dev_done = rehearsed["tasks"][task]["max_eval_examples"]
        full_seconds = gpu_seconds = None
        if step and n_full:
            full_steps = math.ceil(n_full * ratio / longest.batch_size) * longest.epochs
            eval_factor = (dev_full / min(dev_done, dev_full) if dev_full and dev_done else 1.0) * longest.epochs / hp["epochs"]
            restart = full_steps * step * longest.batch_size / hp["batch_size"] + evaluation * eval_factor
            full_seconds = restart * plan.job_restarts(full)
            length = full["tasks"][task]["max_seq_length"]  # every input at full length: an upper bound
            flops = 6 * (checkpoint_params or 0) * n_full * ratio * length * longest.epochs
            gpu_seconds = flops / flops_per_second * plan.job_restarts(full) if checkpoint_params else None
        peak = metrics.get("peak_gpu_mb") or metrics.get("peak_rss_mb")
        rows.append({
            "rule": "finetune", "job": os.path.relpath(os.path.dirname(os.path.dirname(path)), at("results", "finetune")),
            "device": metrics["device"], "measured_seconds": metrics["seconds"], "measured_step_seconds": step,
            "measured_rss_mb": metrics.get("peak_rss_mb"), "measured_gpu_mb": metrics.get("peak_gpu_mb"),
            "parameters": checkpoint_params, "full_seconds": full_seconds,
            "full_gpu_seconds": full_seconds if metrics["device"].startswith("cuda") else gpu_seconds,
            "full_memory_mb": (_memory(peak, checkpoint_params, longest.batch_size / hp["batch_size"],
                                       metrics["device"].startswith("cuda")) if peak and checkpoint_params else None),
            "full_jobs": len(points), "gpu_memory_mb": settings["gpu_memory_gb"] * 1000,
            "basis": (f"the longest grid point ({longest.key}) x {full['finetune']['restarts']} restarts: "
                      f"{n_full if n_full else '?'} examples x {ratio:.2f} features each"),
            "request": {**requests.get("finetune", {}), **cost.finetune_request(
                full, plan.FinetuneRun(_job_model(path, root), _full_step(full, rehearsed, path, root), task, head,
                                       longest.key))}})
    vocab = _vocab_size(at("results", "tokenizer"))
    return {"startup_seconds": startup, "assumption": full_estimate["assumption"], "rows": rows,
            "tokenizer": {"configured": full["tokenizer"]["vocab_size"], "learnt": vocab},
            "jobs": len(benchmarks), "estimate_total": full_estimate["total"], "disk": full_estimate["disk"]}


def _job_model(path: str, root: str) -> str:
    """The model folder name of a fine-tuning metrics.json (an ablation or a checkpoint)."""
    return os.path.relpath(path, os.path.join(root, "results", "finetune")).split(os.sep)[0]


def _full_step(full: dict, rehearsed: dict, path: str, root: str) -> str:
    """A rehearsal's step-k checkpoint as the full run's: the same one of the saved steps."""
    model, step = os.path.relpath(path, os.path.join(root, "results", "finetune")).split(os.sep)[:2]
    if step == plan.FINAL_STEP or model not in full["ablations"]:
        return step
    index = plan.resolve_ablation(rehearsed, model)["pretrain"]["save_steps"].index(int(step.split("-")[1]))
    return f"step-{plan.resolve_ablation(full, model)['pretrain']['save_steps'][index]}"


def _checkpoint_parameters(checkpoint: str) -> int | None:
    """Parameters of a checkpoint's encoder, from its config (no torch): the pretraining run's
    metrics.json beside it, or the imported checkpoint's."""
    for candidate in (os.path.join(checkpoint, "..", "..", "metrics.json"),):
        if os.path.exists(candidate):
            value = _read_json(candidate).get("parameters")
            if value:
                return int(value)
    config_path = os.path.join(checkpoint, "config.json")
    if not os.path.exists(config_path):
        return None
    c = _read_json(config_path)

    h = c["hidden_size"]
    return (c["num_hidden_layers"] * layer_parameters(h, c["intermediate_size"])
            + (c["vocab_size"] + c.get("max_position_embeddings", 512) + c.get("type_vocab_size", 2)) * h)


def _vocab_size(tokenizer_dir: str) -> int | None:
    """The learnt vocabulary's size (the tokenizer rule's tokenizer.json), specials included."""
    path = os.path.join(tokenizer_dir, "tokenizer.json")
    if not os.path.exists(path):
        return None
    return len(_read_json(path)["model"]["vocab"])


GPU_RULES = ("pretrain", "finetune")


def _megabytes(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def _fits(row: dict) -> str:
    """Whether the profile's first attempt covers the extrapolated job: its runtime (GPU time for
    the GPU rules) and, for the CPU rules, its memory."""
    request = row["request"]
    seconds = row["full_gpu_seconds"] if row["rule"] in GPU_RULES else row["full_seconds"]
    verdicts = []
    if isinstance(request.get("runtime"), (int, float)) and seconds is not None:
        if seconds <= request["runtime"] * 60:
            verdicts.append("time ok")
        else:  # an upper bound above the request says nothing either way
            verdicts.append("time not judged (upper bound)" if row.get("upper_bound") else "**time short**")
    memory = row.get("full_memory_mb")
    if row["rule"] not in GPU_RULES and isinstance(request.get("mem_mb"), (int, float)) and memory is not None:
        verdicts.append("mem ok" if memory <= request["mem_mb"] else "**mem short**")
    # A GPU job's device memory: its extrapolated peak (from CPU measurements an upper bound: the
    # activations scaled by the micro-batch) against estimate.gpu_memory_gb.
    device = row.get("gpu_memory_mb")
    if row["rule"] in GPU_RULES and request.get("gpu") != 0 and device and memory is not None:
        verdicts.append("GPU mem ok" if memory <= device else
                        "**GPU mem short**: raise pretrain.accumulation_steps" if row["rule"] == "pretrain" else
                        "**GPU mem short**: a smaller batch")
    return ", ".join(verdicts) or "?"


def summarize(rows: list[dict]) -> dict:
    """Per rule: its longest full-run job and largest memory against the profile's request."""
    out = {}
    for rule in dict.fromkeys(r["rule"] for r in rows):
        mine = [r for r in rows if r["rule"] == rule]
        key = "full_gpu_seconds" if rule in GPU_RULES else "full_seconds"
        times = [r[key] for r in mine if r[key] is not None]
        memories = [r["full_memory_mb"] for r in mine if r.get("full_memory_mb") is not None]
        longest = max(mine, key=lambda r: r[key] or 0.0)
        heaviest = max(mine, key=lambda r: r.get("full_memory_mb") or 0.0)
        verdicts = {_fits(longest), _fits(heaviest)}
        measured = [r["measured_rss_mb"] for r in mine if r.get("measured_rss_mb")]
        disks = [r["full_disk_gb"] for r in mine if r.get("full_disk_gb") is not None]
        out[rule] = {"jobs": len(mine), "seconds": max(times) if times else None,
                     "memory_mb": max(memories) if memories else None, "request": longest["request"],
                     "fits": " / ".join(sorted(verdicts)),
                     "measured_rss_mb": max(measured) if measured else None,  # measured, beside the extrapolated
                     "disk_gb": sum(disks) if disks else None}  # every run's checkpoints and state, extrapolated
    return out


def markdown(result: dict, title: str) -> str:
    lines = [f"# Rehearsal: {title}", "",
             f"Measured at the configuration's real shapes with the rehearsal's budgets ({result['jobs']} jobs "
             f"benchmarked; a job's fixed cost, the fastest job, {result['startup_seconds']:.1f} s), extrapolated "
             f"to the full run. GPU time: {result['assumption']}, or the measured steps where the rehearsal ran on "
             "a GPU. Memory: peak RSS on CPU, the allocator's peak on a GPU; the full run's keeps the training "
             "state (16 bytes a parameter) and, on CPU, the process (~450 MB) and scales the rest by the micro-batch "
             "(an upper bound). Requests: "
             "the cluster profile's first attempt (mem_mb, runtime in minutes, GPUs).", ""]
    vocab = result["tokenizer"]
    if vocab["learnt"] is not None and vocab["learnt"] != vocab["configured"]:
        lines += [f"**Vocabulary**: the rehearsal's corpus gave {vocab['learnt']:,} pieces of the configured "
                  f"{vocab['configured']:,}: the models' embeddings were that much smaller than the full run's.", ""]
    lines += ["| rule | rehearsal jobs | longest full-run job (GPU time for pretrain and finetune) | largest "
              "full-run memory MB | request (mem_mb, min, gpu) | fits? |", "|---|---|---|---|---|---|"]
    for rule, summary in summarize(result["rows"]).items():
        request = summary["request"]
        lines.append(f"| {rule} | {summary['jobs']} | {duration(summary['seconds'])} | "
                     f"{_megabytes(summary['memory_mb'])} | "
                     f"{request.get('mem_mb', '?')}, {request.get('runtime', '?')}, {request.get('gpu') or 0} | "
                     f"{summary['fits']} |")
    lines += ["", "Every job:", ""]
    lines += ["| rule | job | device | measured | step (s) | peak MB (RSS / GPU) | full run: CPU time | GPU time "
              "| memory MB | disk GB | request (mem_mb, min, gpu) | fits? |", "|" + "---|" * 12]
    for row in result["rows"]:
        step = row.get("measured_step_seconds")
        if isinstance(step, dict):
            step = " / ".join(f"{k} {v:.2f}" for k, v in step.items())
        elif step is not None:
            step = f"{step:.2f}"
        peak = f"{row.get('measured_rss_mb') or '?'}" + (f" / {row['measured_gpu_mb']}" if row.get("measured_gpu_mb") else "")
        memory = row.get("full_memory_mb")
        disk = row.get("full_disk_gb")
        request = row["request"]
        lines.append(
            f"| {row['rule']} | {row['job']} | {row['device']} | {duration(row['measured_seconds'])} | {step or ''} "
            f"| {peak} | {duration(row['full_seconds'])} | "
            f"{duration(row['full_gpu_seconds']) if row['rule'] in GPU_RULES else ''} "
            f"| {'' if memory is None else f'{memory:,.0f}'} | {'' if disk is None else f'{disk:.2f}'} "
            f"| {request.get('mem_mb', '?')}, {request.get('runtime', '?')}, {request.get('gpu') or 0} | {_fits(row)} |")
    lines += ["", "How each full-run number is made:", ""]
    for basis in dict.fromkeys((r["rule"], r["basis"]) for r in result["rows"]):
        lines.append(f"- {basis[0]}: {basis[1]}")
    return "\n".join(lines) + "\n"


def write_report(full: dict, rehearsed: dict, requests: dict, markdown_path: str, json_path: str,
                 title: str = "", root: str = ".") -> dict:
    result = report(full, rehearsed, requests, root)
    with atomic_file(markdown_path) as handle:
        handle.write(markdown(result, title))
    write_json(json_path, result)
    return result
