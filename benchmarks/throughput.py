"""Throughput of our training pipeline against the plain-HuggingFace reference, side by side.

    python benchmarks/throughput.py --mode all --sizes tiny,mini,base --steps 3 --repeats 3
    python benchmarks/throughput.py --smoke          # seconds; what CI runs

Both implementations run in one process, interleaved (ours, ref, ours, ref, ...), on the same
token sequences and the same initial weights, so that a machine's drift (turbo, other jobs)
hits both alike; every number is the median over the rounds.

  ours      the family's pretraining model (BertForAblationPretraining, RoFormerForAblationPretraining:
            vocabulary projection only at labelled positions) or
            FinetuneModel, our Masker, batches trimmed to their longest row (dynamic padding),
            and our Engine with precision="auto" (bf16 autocast where the hardware has it).
  reference what a user writes with HF: BertForPreTraining / BertForMaskedLM / BertLMHeadModel
            (RoFormerForMaskedLM / RoFormerForCausalLM with --architecture roformer)
            or BertForSequenceClassification, DataCollatorForLanguageModeling (mlm_probability
            0.15) or default_data_collator, every sequence padded to 128, fp32, no compile,
            torch.optim.AdamW + grad clip 1.0 + linear schedule.

Before timing, both models score the same first batch (same weights, same labels) in fp32 with
dropout off; their losses must agree within 1e-3 relative, or the script exits non-zero after
writing its CSVs. FLOP counts are described at ``step_flops`` and in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import ctypes
import datetime
import gc
import math
import os
import platform
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
import transformers
from transformers import (
    BertForMaskedLM,
    BertForPreTraining,
    BertForSequenceClassification,
    BertLMHeadModel,
    BertModel,
    DataCollatorForLanguageModeling,
    RoFormerForCausalLM,
    RoFormerForMaskedLM,
    default_data_collator,
    get_linear_schedule_with_warmup,
)

from bert_ablation import flops
from bert_ablation.data.features import classification_features, pad_batch
from bert_ablation.data.instance_store import encode, write_split
from bert_ablation.data.instances import create_instances, tokenize_documents
from bert_ablation.data.tokenizer import train_wordpiece
from bert_ablation.data.world import World
from bert_ablation.facts.tasks import TASKS
from bert_ablation.models.masking import IGNORE_INDEX, Masker, MaskingProcedure
from bert_ablation.models.modeling import FinetuneModel, bert_config, model_config, pretraining_model
from bert_ablation.models.objectives import OBJECTIVES
from bert_ablation.schema import schema_defaults
from bert_ablation.settings import PretrainSettings
from bert_ablation.storage import atomic_file
from bert_ablation.training.batching import epoch_batches
from bert_ablation.training.engine import Engine, configure_threads, native_bf16, seed_everything
from bert_ablation.training.instance_batches import InstanceBatches, step_generator

SIZES = {  # layers / hidden / heads / intermediate
    "tiny": (2, 128, 2, 512),
    "mini": (4, 256, 4, 1024),
    "base": (12, 768, 12, 3072),
}
MAX_LEN = 128
# Per encoder family, the HF class a user would pretrain with for each objective. HF's RoFormer
# has no NSP head, so there is no like-for-like reference for roformer + mlm_nsp.
REFERENCE_CLASS = {
    "bert": {"mlm_nsp": BertForPreTraining, "mlm": BertForMaskedLM, "ltr": BertLMHeadModel},
    "roformer": {"mlm": RoFormerForMaskedLM, "ltr": RoFormerForCausalLM},
}
LOSS_RTOL = 1e-3
SEED = 0


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=("pretrain", "finetune", "all"), default="all")
    p.add_argument("--sizes", default="tiny,mini,base", help="comma-separated, from " + ",".join(SIZES))
    p.add_argument("--objective", choices=tuple(REFERENCE_CLASS["bert"]), default="mlm_nsp")
    p.add_argument("--architecture", choices=tuple(REFERENCE_CLASS), default="bert",
                   help="encoder family of the pretraining benchmark (fine-tuning is measured on bert)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per implementation per round")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds; medians are reported")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--vocab", type=int, default=8192, help="model vocabulary (see build_pretraining_data)")
    p.add_argument("--world-scale", type=float, default=0.25, help="size of the generated corpus")
    p.add_argument("--ft-examples", type=int, default=1024, help="SST-2-shaped training examples")
    p.add_argument("--no-group-by-length", dest="group", action="store_false",
                   help="ours: plain random batches instead of the pipeline's length-grouped ones")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count())
    p.add_argument("--peak-size", type=int, default=None, help="n of the n x n peak matmul (default 2048 CPU, 8192 GPU)")
    p.add_argument("--compile", action="store_true", help="ours: torch.compile the model (pretrain.compile)")
    p.add_argument("--out", default="results/benchmarks")
    p.add_argument("--smoke", action="store_true", help="tiny only, 2 steps, 1 round, vocab 512: a CI check")
    args = p.parse_args(argv)
    if args.smoke:
        args.sizes, args.steps, args.repeats, args.vocab = "tiny", 2, 1, 512
        args.world_scale, args.ft_examples, args.peak_size = 0.05, 128, 256
    if args.objective not in REFERENCE_CLASS[args.architecture]:
        p.error(f"--architecture {args.architecture} has no HF reference class for --objective {args.objective}; "
                f"use one of {', '.join(REFERENCE_CLASS[args.architecture])}")
    args.sizes = args.sizes.split(",")
    unknown = set(args.sizes) - set(SIZES)
    if unknown:
        p.error(f"unknown sizes {sorted(unknown)}; known: {', '.join(SIZES)}")
    args.peak_size = args.peak_size or (8192 if args.device.startswith("cuda") else 2048)
    return args


# ----------------------------------------------------------------------------- the machine

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int, reps: int = 3) -> float:
    """Measured FLOP/s of an n x n matmul: the denominator of MFU, taken on this run's threads."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    torch.mm(a, b)  # warm-up: kernel selection, page faults
    sync(device)
    began = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - began)


def machine(device: torch.device, threads: int, peak_size: int) -> dict:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
            name = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), name)
    # bf16 is reported only where it is native: elsewhere it is emulated, and never what ours runs.
    bf16 = matmul_peak(device, torch.bfloat16, peak_size) if native_bf16(device) else None
    return {
        "machine": name, "cores": os.cpu_count(), "threads": threads, "device": str(device),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "peak_fp32_gflops": matmul_peak(device, torch.float32, peak_size) / 1e9,
        "peak_bf16_gflops": None if bf16 is None else bf16 / 1e9,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: peak RSS so far (monotonic, so deltas under-report)
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@contextlib.contextmanager
def step_memory(device: torch.device, out: dict):
    """Peak memory above the level before the block (activations, gradients, temporaries):
    the weights and optimizer state, identical on both sides, are excluded.

    CPU: ru_maxrss only ever grows, so after the first implementation's step it cannot see the
    second's; instead a thread samples the RSS every millisecond, after malloc_trim has handed
    the previous step's freed memory back to the OS."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        yield
        torch.cuda.synchronize(device)
        out["step_mem_mb"] = (torch.cuda.max_memory_allocated(device) - base) / 2**20
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    base = peak = _rss_bytes()
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.wait(0.001):
            peak = max(peak, _rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield
    finally:
        done.set()
        sampler.join()
    out["step_mem_mb"] = (max(peak, _rss_bytes()) - base) / 2**20


# ----------------------------------------------------------------------------- FLOPs

def step_flops(config, lengths, head_positions: int, pooled_rows: int, pooled_out: int) -> float:
    """Matmul FLOPs of one training step, by the FLOP model the cost estimate uses
    (src/bert_ablation/flops.py): backward costs twice the forward, so 6 per weight per token:

        6 * L * (4H^2 + 2HI) * sum(len)      encoder projections and FFN (matmul weights)
      + 12 * L * H * sum(len^2)              attention scores and weighted values (full, even if causal)
      + 6 * (H^2 + HV) * head_positions      MLM head: transform + vocabulary projection
      + 6 * (H^2 + H * out) * pooled_rows    pooler + NSP / classification layer

    ``lengths`` are the sequence lengths the side computes (hardware FLOPs) or the real ones
    (model FLOPs). Embedding lookups, LayerNorm, softmax, biases and the optimizer are not counted.
    """
    L, H, F, V = config.num_hidden_layers, config.hidden_size, config.intermediate_size, config.vocab_size
    encoder = flops.sequences_forward(flops.matmul_weights(L, H, F), L, H, lengths)
    mlm_head = (flops.dense_forward(H, H) + flops.dense_forward(H, V)) * int(head_positions)
    pooled = (flops.dense_forward(H, H) + flops.dense_forward(H, pooled_out)) * int(pooled_rows)
    return float(flops.TRAINED * (encoder + mlm_head + pooled))


# ----------------------------------------------------------------------------- data

def build_pretraining_data(args, workdir: Path):
    """WordPiece vocabulary and NSP-pair instances from the generated world, stored as the real
    pipeline stores them, so ours reads them through the real InstanceBatches.

    The world's corpus supports only ~1-3k WordPieces; the model's vocabulary is nevertheless
    ``--vocab`` rows (a padded vocabulary: rows no input uses), because the vocabulary projection's
    cost, which is what separates the two sides, depends only on its size."""
    world = World(SEED, args.world_scale)
    documents = world.documents()
    tokenizer = train_wordpiece([s for doc in documents for s in doc], args.vocab, lowercase=True, min_frequency=2)
    instances = create_instances(tokenize_documents(documents, tokenizer), "nsp_pairs", MAX_LEN,
                                 short_seq_prob=0.1, dupe_factor=2, seed=SEED)
    arrays = encode(instances, MAX_LEN, tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id)
    write_split(workdir / "instances" / "train", arrays)
    return world, tokenizer, InstanceBatches(str(workdir / "instances"), "train", args.batch_size, SEED,
                                             group_by_length=args.group)


def model_spec(size: str, architecture: str = "bert") -> dict:
    layers, hidden, heads, intermediate = SIZES[size]
    return {"architecture": architecture, "layers": layers, "hidden": hidden, "heads": heads,
            "intermediate": intermediate, "dropout": 0.1, "max_position_embeddings": MAX_LEN}


def pad_to(tensor: torch.Tensor, value: int) -> torch.Tensor:
    return torch.nn.functional.pad(tensor, (0, MAX_LEN - tensor.size(1)), value=value)


def hf_examples(batch: dict, tokenizer, nsp: bool) -> list[dict]:
    """Rows as an HF dataset yields them after ``tokenizer(..., padding="max_length",
    return_special_tokens_mask=True)``: lists padded to 128, prepared once, before training."""
    input_ids = pad_to(batch["input_ids"], tokenizer.pad_token_id)
    columns = {
        "input_ids": input_ids,
        "token_type_ids": pad_to(batch["token_type_ids"], 0),
        "attention_mask": pad_to(batch["attention_mask"], 0),
        "special_tokens_mask": torch.isin(input_ids, torch.tensor(tokenizer.all_special_ids)).long(),
    }
    if nsp:
        columns["next_sentence_label"] = batch["next_sentence_label"]
    columns = {k: v.tolist() for k, v in columns.items()}
    return [{k: v[r] for k, v in columns.items()} for r in range(len(input_ids))]


# ----------------------------------------------------------------------------- the two sides
#
# A side's ``step(k)`` trains on the k-th batch and returns what it did and how long it took
# (batch building included, the device synchronised, the FLOP counting after it excluded).
# Both sides' k-th batches hold the same rows. ``*_sides`` also return (ours, its first batch,
# ref, that batch as the reference takes it): the inputs of the loss-equivalence check.

class OursSide:
    """Our Engine on batches built the way our loops build them; subclasses say how."""

    name = "ours"

    def __init__(self, model, total_steps, args, device):
        settings = PretrainSettings.from_dict({"weight_decay": args.weight_decay, "precision": "auto",
                                               "compile": args.compile})
        self.engine = Engine.from_settings(model, settings, lr=args.lr, total_steps=total_steps,
                                           warmup_steps=max(1, total_steps // 10), device=device)
        self.precision = self.engine.precision

    def step(self, k: int) -> dict:
        began = time.perf_counter()
        batch = self.batch(k)
        data_s = time.perf_counter() - began
        self.engine.step(batch)
        sync(self.engine.device)
        seconds = time.perf_counter() - began
        mask = batch["attention_mask"]
        head_positions, pooled = self.head_work(batch)
        return {"seconds": seconds, "data_s": data_s, "tokens": int(mask.sum()), "positions": mask.numel(),
                "rows": len(mask),
                "hw_flops": step_flops(self.config, [mask.size(1)] * len(mask), head_positions, pooled, 2),
                "model_flops": step_flops(self.config, mask.sum(1), head_positions, pooled, 2)}


class OursPretrain(OursSide):
    def __init__(self, model, batches, masker, objective, total_steps, args, device):
        super().__init__(model, total_steps, args, device)
        self.batches, self.masker, self.objective, self.config = batches, masker, objective, model.config

    def batch(self, k: int) -> dict:
        # Everything our loop does per step on the host: pick rows, trim, mask.
        return self.objective.targets(self.batches.for_step(k), self.masker, step_generator(SEED, k))

    def head_work(self, batch: dict) -> tuple[int, int]:
        """(vocabulary projections: labelled positions only, NSP rows)."""
        return int((batch["labels"] != IGNORE_INDEX).sum()), len(batch["labels"]) if self.objective.nsp else 0


class RefSide:
    """The plain HF loop: collate, forward, backward, clip, AdamW, schedule; fp32, no tricks."""

    name = "ref"
    precision = "fp32"

    def __init__(self, model, total_steps, args, device):
        self.model, self.device = model.to(device), device
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, max(1, total_steps // 10), total_steps)

    def step(self, k: int) -> dict:
        began = time.perf_counter()
        batch = self.collate(k)
        data_s = time.perf_counter() - began
        self.model.train()
        loss = self.model(**{key: v.to(self.device) for key, v in batch.items()}).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        sync(self.device)
        seconds = time.perf_counter() - began
        mask, config = batch["attention_mask"], self.model.config
        computed, scored, pooled = self.head_work(batch)
        return {"seconds": seconds, "data_s": data_s, "tokens": int(mask.sum()), "positions": mask.numel(),
                "rows": len(mask), "hw_flops": step_flops(config, [MAX_LEN] * len(mask), computed, pooled, 2),
                "model_flops": step_flops(config, mask.sum(1), scored, pooled, 2)}


class RefPretrain(RefSide):
    def __init__(self, model, examples, tokenizer, objective, total_steps, args, device):
        super().__init__(model, total_steps, args, device)
        self.examples, self.objective = examples, objective
        self.collator = DataCollatorForLanguageModeling(tokenizer, mlm=not objective.causal, mlm_probability=0.15)

    def collate(self, k: int) -> dict:
        return self.collator(self.examples[k])

    def head_work(self, batch: dict) -> tuple[int, int, int]:
        """(vocabulary projections computed: every position, padding included, as HF's heads do;
        those that carry a label; NSP rows)."""
        labels = batch["labels"]
        scored = labels[:, 1:] if self.objective.causal else labels  # causal heads shift internally
        return labels.numel(), int((scored != IGNORE_INDEX).sum()), len(labels) if self.objective.nsp else 0


def pretraining_sides(size, args, tokenizer, batches, device, total_steps):
    objective = OBJECTIVES[args.objective]
    masker = Masker.for_tokenizer(MaskingProcedure.from_config(schema_defaults("masking")), tokenizer)
    spec = model_spec(size, args.architecture)
    config = model_config(spec, max(args.vocab, len(tokenizer)), tokenizer.pad_token_id, objective.causal)
    seed_everything(SEED)
    ours = pretraining_model(spec, config.vocab_size, tokenizer.pad_token_id, objective.causal)
    ref = REFERENCE_CLASS[args.architecture][args.objective](copy.deepcopy(config))
    missing = ref.load_state_dict(ours.state_dict(), strict=False).missing_keys  # MLM/LTR heads have no pooler
    assert not missing, f"reference weights not copied: {missing}"
    examples = [hf_examples(batches.for_step(k), tokenizer, objective.nsp) for k in range(total_steps)]
    ours_side = OursPretrain(ours, batches, masker, objective, total_steps, args, device)
    ref_side = RefPretrain(ref, examples, tokenizer, objective, total_steps, args, device)

    # Loss check inputs: our first batch, its labels, and the same padded to 128 for the reference.
    first = ours_side.batch(0)
    padded = {key: pad_to(v, {"input_ids": tokenizer.pad_token_id, "labels": IGNORE_INDEX}.get(key, 0))
              if v.dim() == 2 else v for key, v in first.items()
              if not key.startswith("lm_")}  # our host-computed prediction slots: the reference has labels
    if objective.causal:  # ours gets labels already shifted; HF's causal head shifts them itself
        padded["labels"] = padded["input_ids"].masked_fill(padded["attention_mask"] == 0, IGNORE_INDEX)
    return ours_side, ref_side, (ours, first, ref, padded)


def step_batches(n_examples: int, lengths: list[int], args, total_steps: int) -> list[list[int]]:
    """Row indices of each fine-tuning step, drawn per epoch as our fine-tuning loop draws them
    (length-grouped unless --no-group-by-length), so dynamic padding pads little."""
    if n_examples < args.batch_size:
        raise SystemExit(f"--ft-examples {n_examples} is less than one batch of {args.batch_size}")
    generator, out = torch.Generator().manual_seed(SEED), []
    while len(out) < total_steps:
        out += epoch_batches(lengths, args.batch_size, generator, args.group, drop_last=True)
    return out[:total_steps]


class OursFinetune(OursSide):
    def __init__(self, model, features, index, pad_id, total_steps, args, device):
        super().__init__(model, total_steps, args, device)
        self.features, self.index, self.pad_id, self.config = features, index, pad_id, model.encoder.config

    def batch(self, k: int) -> dict:
        return pad_batch(self.features, self.index[k], self.pad_id, ("labels",))

    def head_work(self, batch: dict) -> tuple[int, int]:
        return 0, len(batch["labels"])  # one pooled classification per row


class RefFinetune(RefSide):
    def __init__(self, model, examples, index, total_steps, args, device):
        super().__init__(model, total_steps, args, device)
        self.examples, self.index = examples, index

    def collate(self, k: int) -> dict:
        return default_data_collator([self.examples[i] for i in self.index[k]])

    def head_work(self, batch: dict) -> tuple[int, int, int]:
        return 0, 0, len(batch["labels"])


def finetuning_sides(size, args, tokenizer, world, device, total_steps):
    records = world.task("sst2", args.ft_examples, 0)["train"]
    columns = {"sentence": [r["sentence"] for r in records], "label": [r["label"] for r in records]}
    features = classification_features(TASKS["sst2"], columns, tokenizer, MAX_LEN)
    encoded = tokenizer(columns["sentence"], padding="max_length", truncation=True, max_length=MAX_LEN)
    examples = [{"input_ids": encoded["input_ids"][i], "token_type_ids": encoded["token_type_ids"][i],
                 "attention_mask": encoded["attention_mask"][i], "labels": columns["label"][i]}
                for i in range(len(records))]
    index = step_batches(len(records), [len(ids) for ids in features["input_ids"]], args, total_steps)

    config = bert_config(model_spec(size), max(args.vocab, len(tokenizer)), tokenizer.pad_token_id, causal=False)
    seed_everything(SEED)
    ours = FinetuneModel(BertModel(config), "classification", 2, "linear", dropout=0.1)
    ref = BertForSequenceClassification(copy.deepcopy(config))  # num_labels defaults to 2
    ref.bert.load_state_dict(ours.encoder.state_dict())
    ref.classifier.load_state_dict(ours.output.state_dict())

    ours_side = OursFinetune(ours, features, index, tokenizer.pad_token_id, total_steps, args, device)
    ref_side = RefFinetune(ref, examples, index, total_steps, args, device)
    padded = default_data_collator([examples[i] for i in index[0]])
    return ours_side, ref_side, (ours, ours_side.batch(0), ref, padded)


# ----------------------------------------------------------------------------- measurement

@torch.no_grad()
def first_batch_losses(ours, ours_batch, ref, ref_batch, device) -> tuple[float, float]:
    """Both models' fp32 loss on the same first batch, same weights, same labels, dropout off."""
    losses = []
    for model, batch in ((ours, ours_batch), (ref, ref_batch)):
        model.to(device).eval()
        losses.append(float(model(**{k: v.to(device) for k, v in batch.items()}).loss))
    return tuple(losses)


def benchmark(mode: str, size: str, args, data, device, info: dict) -> list[dict]:
    total_steps = 1 + args.repeats * args.steps + 1  # warm-up, rounds, memory step
    if mode == "pretrain":
        ours, ref, check = pretraining_sides(size, args, data["tokenizer"], data["batches"], device, total_steps)
    else:
        ours, ref, check = finetuning_sides(size, args, data["tokenizer"], data["world"], device, total_steps)
    loss_ours, loss_ref = first_batch_losses(*check, device)

    sides = (ours, ref)
    rounds = {side.name: [] for side in sides}
    for side in sides:  # warm-up step 0: first-call allocations, kernel selection, optimizer state
        side.step(0)
    k = 1
    for _ in range(args.repeats):
        for side in sides:
            totals = dict.fromkeys(("seconds", "data_s", "tokens", "positions", "rows", "hw_flops", "model_flops"), 0.0)
            for j in range(args.steps):
                for key, value in side.step(k + j).items():
                    totals[key] += value
            rounds[side.name].append(totals)
        k += args.steps
    memory = {}
    for side in sides:  # memory on its own step: the sampler thread must not disturb the timing
        memory[side.name] = {}
        with step_memory(device, memory[side.name]):
            side.step(k)

    config = check[0].config if mode == "pretrain" else check[0].encoder.config
    layers, hidden, heads, intermediate = SIZES[size]

    def median(name: str, f) -> float:
        return statistics.median(f(r) for r in rounds[name])

    tokens_per_s = {s.name: median(s.name, lambda r: r["tokens"] / r["seconds"]) for s in sides}
    rows = []
    for side, loss in ((ours, loss_ours), (ref, loss_ref)):
        peak = info["peak_bf16_gflops"] if side.precision == "bf16" else info["peak_fp32_gflops"]
        hw = median(side.name, lambda r: r["hw_flops"] / r["seconds"]) / 1e9
        useful = median(side.name, lambda r: r["model_flops"] / r["seconds"]) / 1e9
        rows.append({
            "mode": mode, "objective": args.objective if mode == "pretrain" else "sst2", "size": size,
            "architecture": args.architecture if mode == "pretrain" else "bert",
            "impl": side.name, "layers": layers, "hidden": hidden, "heads": heads, "intermediate": intermediate,
            "vocab_size": config.vocab_size, "tokenizer_vocab": len(data["tokenizer"]),
            "batch_size": args.batch_size, "max_seq_length": MAX_LEN, "steps": args.steps, "repeats": args.repeats,
            "grouped_by_length": bool(args.group and side.name == "ours"),
            "precision": side.precision, "attn_impl": config._attn_implementation,
            "tokens_per_s": tokens_per_s[side.name],
            "examples_per_s": median(side.name, lambda r: r["rows"] / r["seconds"]),
            "ratio_vs_ref": tokens_per_s[side.name] / tokens_per_s["ref"],
            "step_ms": median(side.name, lambda r: 1e3 * r["seconds"] / args.steps),
            "hw_gflops": hw, "model_gflops": useful, "peak_gflops": peak,
            "hfu": hw / peak, "mfu": useful / peak,
            "padding_share": median(side.name, lambda r: 1 - r["tokens"] / r["positions"]),
            "step_mem_mb": memory[side.name]["step_mem_mb"],
            "data_share": median(side.name, lambda r: r["data_s"] / r["seconds"]),
            "first_batch_loss": loss,
            "loss_rel_diff": abs(loss_ours - loss_ref) / abs(loss_ref),
            "loss_equivalent": abs(loss_ours - loss_ref) <= LOSS_RTOL * abs(loss_ref),
            **info,
        })
    return rows


# ----------------------------------------------------------------------------- reporting

def fmt(value, table: bool = False) -> str:
    """CSV: 6 significant digits, never an exponent for large counts; table: readable."""
    if isinstance(value, float) and math.isfinite(value):
        if table:
            return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
        return f"{value:.0f}" if abs(value) >= 1e5 else f"{value:.6g}"
    return "" if value is None else str(value)


def write_csv(path: Path, rows: list[dict]) -> None:
    with atomic_file(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: fmt(v) for k, v in row.items()} for row in rows)


def markdown(rows: list[dict]) -> str:
    columns = [("size", "size"), ("impl", "impl"), ("precision", "prec"), ("tokens_per_s", "tokens/s"),
               ("examples_per_s", "examples/s"), ("ratio_vs_ref", "ours/ref"), ("hfu", "HFU"), ("mfu", "MFU"),
               ("padding_share", "padding"), ("step_mem_mb", "step mem MB"), ("data_share", "data share"),
               ("first_batch_loss", "loss"), ("loss_equivalent", "loss equal")]
    lines = ["| " + " | ".join(title for _, title in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row[key], table=True) for key, _ in columns) + " |" for row in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    configure_threads(args.threads)
    device = torch.device(args.device)
    info = machine(device, torch.get_num_threads(), args.peak_size)
    modes = ("pretrain", "finetune") if args.mode == "all" else (args.mode,)
    print(f"{info['machine']} ({info['device']}, {info['threads']} threads): matmul peak "
          f"fp32 {info['peak_fp32_gflops']:.1f} GFLOP/s, bf16 {fmt(info['peak_bf16_gflops'], table=True) or 'n/a'} GFLOP/s")

    with tempfile.TemporaryDirectory() as workdir:
        world, tokenizer, batches = build_pretraining_data(args, Path(workdir))
        data = {"world": world, "tokenizer": tokenizer, "batches": batches}
        failed = []
        for mode in modes:
            rows = [row for size in args.sizes for row in benchmark(mode, size, args, data, device, info)]
            write_csv(Path(args.out) / f"{mode}.csv", rows)
            print(f"\n### {mode} ({rows[0]['objective']}, batch {args.batch_size} x {MAX_LEN})\n\n{markdown(rows)}")
            failed += [f"{mode}/{r['size']}: loss {r['first_batch_loss']:.6g} vs ref (rel diff {r['loss_rel_diff']:.2e})"
                       for r in rows if r["impl"] == "ours" and not r["loss_equivalent"]]
    if failed:
        print("\nLOSS MISMATCH (ours vs reference, same weights and labels):\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
