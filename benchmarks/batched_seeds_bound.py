"""The most that training a fine-tuning job's pretraining seeds in one batched step could save.

One step of the world's encoder (RoFormer 4/64/2, our Engine, one thread) at batch 16, the
default, and at batch 16 x seeds, what one step over every seed's batch would compute (a vmap
over the seeds' weight sets does at least this work): if the second costs little more than the
first, batching seeds pays; if it costs nearly ``seeds`` times as much, the steps are compute-bound
and it does not. Interleaved rounds, medians; prints one Markdown row per sequence length.

    python benchmarks/batched_seeds_bound.py --lengths 25 75 128 --seeds 3

docs/scale.md ("Where the 3-seed default run's time goes") has the figures of this machine.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers.models.bert.modeling_bert import BertPooler

from bert_ablation.models.modeling import ARCHITECTURES, FinetuneModel, pretraining_model
from bert_ablation.settings import PretrainSettings
from bert_ablation.training.engine import Engine, configure_threads

WORLD_ENCODER = {"architecture": "roformer", "layers": 4, "hidden": 64, "heads": 2, "intermediate": 256,
                 "dropout": 0.0, "max_position_embeddings": 128}  # config.yaml's world recipe


def engine_for(vocab: int, labels: int) -> Engine:
    torch.manual_seed(0)
    encoder = ARCHITECTURES["roformer"].encoder_of(pretraining_model(WORLD_ENCODER, vocab, 0, causal=False))
    encoder.pooler = BertPooler(encoder.config)
    model = FinetuneModel(encoder, "classification", labels, "linear", 0.1)
    return Engine.from_settings(model, PretrainSettings.from_dict({}), lr=1e-3, total_steps=10**6, warmup_steps=0)


def batch(rows: int, length: int, vocab: int, labels: int) -> dict:
    generator = torch.Generator().manual_seed(rows * 1000 + length)
    return {"input_ids": torch.randint(5, vocab, (rows, length), generator=generator),
            "token_type_ids": torch.zeros(rows, length, dtype=torch.long),
            "attention_mask": torch.ones(rows, length, dtype=torch.long),
            "labels": torch.randint(0, labels, (rows,), generator=generator)}


def measure(length: int, seeds: int, rounds: int, vocab: int = 600, labels: int = 3) -> dict:
    engine = engine_for(vocab, labels)
    sizes = (16, 16 * seeds)
    batches = {n: batch(n, length, vocab, labels) for n in sizes}
    for _ in range(5):  # warm-up: allocator, autocast caches
        for n in sizes:
            engine.step(batches[n])
    times = {n: [] for n in sizes}
    for r in range(rounds):
        for n in (sizes if r % 2 else sizes[::-1]):
            began = time.perf_counter()
            engine.step(batches[n])
            times[n].append(time.perf_counter() - began)
    one, batched = (statistics.median(times[n]) * 1000 for n in sizes)
    return {"length": length, "one_ms": one, "batched_ms": batched, "bound": seeds * one / batched}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[25, 75, 128])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    configure_threads(args.threads)
    print(f"| tokens | batch 16 | batch {16 * args.seeds} ({args.seeds} seeds) | {args.seeds} steps of 16 / one of "
          f"{16 * args.seeds} |\n|---|---|---|---|")
    for length in args.lengths:
        m = measure(length, args.seeds, args.rounds)
        print(f"| {length} | {m['one_ms']:.1f} ms | {m['batched_ms']:.1f} ms | {m['bound']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
