"""What a configuration will cost before it runs: tokens, FLOPs and GPU-hours per pretraining
run, and the disk the data stages and checkpoints take (``snakemake estimate``).

FLOPs per trained token (forward + backward = 3x forward; PaLM, Chowdhery et al. 2022, App. B):
  6 x N            N = non-embedding parameters (the encoder layers, exact for our models)
  + 12 x L x H x T attention scores and values at sequence length T
  + 6 x H x V x p  the vocabulary projection, at the share p of positions that are scored
                   (the masking probability for masked-LM, every position for LTR)
Sequences are counted at their full length, as the paper's budget is (packed instances are).
GPU-hours = FLOPs / (MFU x peak), at ``estimate.mfu`` of ``estimate.peak_tflops``. Nothing here
imports torch: the estimate is instant, whatever the preset.
"""

from __future__ import annotations

import logging
import os

from . import plan
from .storage import write_json

log = logging.getLogger(__name__)

BYTES_PER_TOKEN = 4.4  # raw English text per WordPiece token at a 30k vocabulary (~1.3 tokens a word)
ROW_BYTES = 4 * 4 + 1  # an instance's lengths, segment_b, doc_a, doc_b (int32) and NSP label (int8)


def layer_parameters(hidden: int, intermediate: int) -> int:
    """One post-LN encoder layer: Q, K, V, O projections, the feed-forward pair, two LayerNorms."""
    return 4 * (hidden * hidden + hidden) + 2 * hidden * intermediate + intermediate + hidden + 4 * hidden


def non_embedding_parameters(model: dict) -> int:
    return model["layers"] * layer_parameters(model["hidden"], model["intermediate"])


def run_estimate(spec: dict, vocab_size: int, max_seq_length: int) -> dict:
    train, model = spec["pretrain"], spec["model"]
    short = min(train["short_seq_steps"], train["steps"])  # a run of 0 steps has no phases
    phases = [(short, train["short_seq_length"]), (train["steps"] - short, max_seq_length)]
    scored = 1.0 if spec["objective"] == "ltr" else spec["masking"]["probability"]
    n = non_embedding_parameters(model)
    tokens = flops = 0
    for steps, length in phases:
        phase_tokens = steps * train["batch_size"] * length
        per_token = 6 * n + 12 * model["layers"] * model["hidden"] * length + 6 * model["hidden"] * vocab_size * scored
        tokens += phase_tokens
        flops += phase_tokens * per_token
    return {"ablation": spec["name"], "steps": train["steps"], "batch_size": train["batch_size"],
            "non_embedding_parameters": n, "tokens": tokens, "flops": float(flops)}


def corpus_text_bytes(config: dict) -> tuple[float | None, str]:
    """The corpus's raw text size and where that number comes from."""
    given = config["estimate"]["corpus_text_gb"]
    if given is not None:
        return given * 1e9, "estimate.corpus_text_gb"
    source = config["corpus"]["source"]
    if source in ("text", "jsonl"):
        from .data.corpus import input_files

        return float(sum(os.path.getsize(p) for p in input_files(config))), "the local files"
    if source == "synthetic":
        return 2e6 * config["world"]["scale"], "the generated world (~2 MB at scale 1)"
    return None, "unknown for hub datasets until downloaded: set estimate.corpus_text_gb"


def estimate(config: dict) -> dict:
    settings = config["estimate"]
    vocab = config["tokenizer"]["vocab_size"]
    runs = []
    for name in plan.pretrain_runs(config):
        spec = plan.resolve_ablation(config, name)
        run = run_estimate(spec, vocab, config["instances"]["max_seq_length"])
        run["gpu_hours"] = run["flops"] / (settings["mfu"] * settings["peak_tflops"] * 1e12) / 3600
        # weights + Adam's two moments in the resumable state; weights alone per kept checkpoint
        hidden = spec["model"]["hidden"]
        params = (run["non_embedding_parameters"] + (vocab + spec["model"]["max_position_embeddings"] + 2) * hidden
                  + 2 * hidden * hidden)  # + embeddings, the MLM transform and the pooler
        run["checkpoint_gb"] = params * 4 * (1 + len(spec["pretrain"]["save_steps"])) / 1e9
        run["state_gb"] = params * 4 * 3 / 1e9
        runs.append(run)
    text_bytes, text_from = corpus_text_bytes(config)
    disk = {"corpus_text_gb": None if text_bytes is None else text_bytes / 1e9, "corpus_text_from": text_from}
    if text_bytes is not None:
        tokens = text_bytes / BYTES_PER_TOKEN
        specs = [plan.resolve_ablation(config, name) for name in plan.pretrain_runs(config)]
        builds = {(s["packing"], config["instances"]["max_seq_length"]) for s in specs} | {
            (s["packing"], s["pretrain"]["short_seq_length"]) for s in specs if s["pretrain"]["short_seq_steps"]}
        token_bytes = 2 if vocab <= 1 << 16 else 4
        instances = 0.0
        for _, length in builds:  # fixed-width rows, most of them full (short_seq_prob shortens a few)
            rows = tokens * config["instances"]["dupe_factor"] / (length * 0.9)
            instances += rows * (length * token_bytes + ROW_BYTES)
        disk.update(corpus_arrow_gb=text_bytes * 1.1 / 1e9, instances_gb=instances / 1e9,
                    instance_builds=sorted(f"{p}/len{n}" for p, n in builds))
    disk["checkpoints_gb"] = sum(r["checkpoint_gb"] for r in runs)
    disk["state_gb"] = sum(r["state_gb"] for r in runs)
    finetune = plan.finetune_runs(config)
    return {
        "assumption": f"{settings['mfu']:.0%} MFU of {settings['peak_tflops']:g} TFLOP/s ({settings['device']})",
        "runs": runs,
        "total": {"runs": sum(1 for r in runs if r["tokens"]), "tokens": sum(r["tokens"] for r in runs),
                  "flops": sum(r["flops"] for r in runs), "gpu_hours": sum(r["gpu_hours"] for r in runs)},
        "disk": disk,
        "finetune": {"jobs": len(finetune), "restarts": config["finetune"]["restarts"]},
    }


def markdown(result: dict) -> str:
    lines = [f"# Compute estimate ({result['assumption']})", "",
             "| pretraining run | steps x batch | non-embedding params | tokens | FLOPs | GPU-hours |",
             "|---|---|---|---|---|---|"]
    for r in result["runs"]:
        lines.append(f"| {r['ablation']} | {r['steps']:,} x {r['batch_size']} | {r['non_embedding_parameters'] / 1e6:.1f}M "
                     f"| {r['tokens'] / 1e9:.2f}B | {r['flops']:.2e} | {r['gpu_hours']:.1f} |")
    t = result["total"]
    lines.append(f"| **all {t['runs']} trained runs** | | | {t['tokens'] / 1e9:.1f}B | {t['flops']:.2e} "
                 f"| {t['gpu_hours']:,.0f} |")
    d = result["disk"]
    lines += ["", "| disk | GB |", "|---|---|"]
    if d["corpus_text_gb"] is None:
        lines.append(f"| corpus text | {d['corpus_text_from']} |")
    else:
        lines += [f"| corpus text ({d['corpus_text_from']}) | {d['corpus_text_gb']:.1f} |",
                  f"| corpus shards (Arrow) | {d['corpus_arrow_gb']:.1f} |",
                  f"| instances ({', '.join(d['instance_builds'])}) | {d['instances_gb']:.1f} |"]
    lines += [f"| checkpoints (final + save_steps) | {d['checkpoints_gb']:.1f} |",
              f"| resumable states under state/ | {d['state_gb']:.1f} |", "",
              f"Fine-tuning: {result['finetune']['jobs']} jobs x {result['finetune']['restarts']} restarts "
              "(not estimated: the tasks' sizes are known once they are read)."]
    return "\n".join(lines) + "\n"


def write_estimate(config: dict, markdown_path: str, json_path: str) -> dict:
    from .storage import atomic_file

    result = estimate(config)
    text = markdown(result)
    with atomic_file(markdown_path) as handle:
        handle.write(text)
    write_json(json_path, result)
    log.info("\n%s", text)
    print(text)
    return result
