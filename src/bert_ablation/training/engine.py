"""The one training engine, shared by pretraining and fine-tuning (as cramming's backend).

``Engine.step(batch)`` runs forward, backward, clipping, the optimizer and the schedule;
``state_dict``/``load_state_dict`` capture everything a resumed run needs, RNG included.
The loops that call it decide only *which* batches to feed. A step may accumulate gradients over
micro-batches (the paper's 256 x 512 batch on GPUs that hold 32 sequences), and fp16 runs with
dynamic loss scaling where bf16 is not native (V100s).
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import random
import time

import numpy as np
import torch
from torch import nn

from ..models.masking import prediction_slots


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure_threads(threads: int | None) -> None:
    """Use exactly the cores Snakemake gave this job: oversubscription slows every job."""
    if threads:
        torch.set_num_threads(int(threads))


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 matmuls run natively (faster than fp32) on this device. On CUDA that is
    compute capability 8.0 (Ampere) or later: ``torch.cuda.is_bf16_supported()`` is also true on
    V100s and T4s, where bf16 is emulated and slower than fp16."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= (8, 0)
    try:
        with open("/proc/cpuinfo") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cuda_rng_in_use() -> bool:
    """Whether this process has CUDA generators whose state a resumed run needs."""
    return torch.cuda.is_available() and torch.cuda.is_initialized()


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


def split_batch(batch: dict, parts: int) -> list[dict]:
    """``parts`` micro-batches of (nearly) equal rows; every tensor is split along dim 0."""
    rows = len(next(iter(batch.values())))
    bounds = [rows * k // parts for k in range(parts + 1)]
    return [{key: value[a:b] for key, value in batch.items()} for a, b in zip(bounds, bounds[1:]) if b > a]


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> bf16 autocast where the hardware computes bf16 natively; on older GPUs (compute
    capability < 8.0: V100, T4) fp16 with loss scaling, their fast half precision; fp32 on CPUs
    without native bf16."""
    if precision == "auto":
        if native_bf16(device):
            return "bf16"
        return "fp16" if device.type == "cuda" else "fp32"
    return precision


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weight matrices only: not on biases and LayerNorm (BERT's exclusions)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def linear_schedule(warmup_steps: int, total_steps: int):
    """Linear warmup to the peak rate, then linear decay to zero (BERT's schedule)."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    return factor


class BertAdam(torch.optim.Optimizer):
    """The original BERT optimizer (google-research/bert ``AdamWeightDecayOptimizer``): Adam
    with decoupled weight decay and *no* bias correction of the moment estimates. Its first steps
    are larger than AdamW's, by (1 - beta1^t) / sqrt(1 - beta2^t): ~3x at step 1 with the default
    betas (warmup hides most of it; Mosbach et al. 2021 found fine-tuning less stable without the
    correction). With the correction it would be torch's AdamW:
    update = m / (sqrt(v) + eps) + weight_decay * param;  param -= lr * update."""

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-6, weight_decay: float = 0.0,
                 foreach: bool = True):
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                                  "foreach": foreach})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            for param in params:
                state = self.state[param]
                if not state:
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
            if params:
                (self._foreach_update if group["foreach"] else self._single_update)(group, params)

    def _single_update(self, group: dict, params: list) -> None:
        """The reference: one parameter at a time (a few kernels each, launched from Python)."""
        beta1, beta2 = group["betas"]
        for param in params:
            m, v = self.state[param]["exp_avg"], self.state[param]["exp_avg_sq"]
            m.mul_(beta1).add_(param.grad, alpha=1 - beta1)
            v.mul_(beta2).addcmul_(param.grad, param.grad, value=1 - beta2)
            update = m / (v.sqrt() + group["eps"])
            if group["weight_decay"]:
                update.add_(param, alpha=group["weight_decay"])
            param.add_(update, alpha=-group["lr"])

    def _foreach_update(self, group: dict, params: list) -> None:
        """The same arithmetic on all of a group's tensors at once (torch's multi-tensor kernels:
        a handful of launches per group instead of per parameter); equal to ``_single_update``
        within float rounding (tests/test_engine.py)."""
        beta1, beta2 = group["betas"]
        grads = [p.grad for p in params]
        m = [self.state[p]["exp_avg"] for p in params]
        v = [self.state[p]["exp_avg_sq"] for p in params]
        torch._foreach_mul_(m, beta1)
        torch._foreach_add_(m, grads, alpha=1 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)
        update = torch._foreach_sqrt(v)
        torch._foreach_add_(update, group["eps"])
        update = torch._foreach_div(m, update)
        if group["weight_decay"]:
            torch._foreach_add_(update, params, alpha=group["weight_decay"])
        torch._foreach_add_(params, update, alpha=-group["lr"])


class Engine:
    @classmethod
    def from_settings(cls, model: nn.Module, settings, *, lr: float, total_steps: int, warmup_steps: int,
                      **runtime) -> "Engine":
        """An engine from a loop's typed settings (``settings.PretrainSettings`` or
        ``plan.FinetuneSettings``: the same field names), the one place that maps config keys onto
        the engine's arguments."""
        return cls(model, lr=lr, total_steps=total_steps, warmup_steps=warmup_steps,
                   weight_decay=settings.weight_decay, betas=tuple(settings.adam_betas),
                   eps=settings.adam_eps, grad_clip=settings.grad_clip, precision=settings.precision,
                   bias_correction=settings.adam_bias_correction,
                   # fine-tuning has no accumulation or compile key: its batches are small enough as
                   # they are, and its runs too short to repay a compile
                   accumulation_steps=getattr(settings, "accumulation_steps", 1),
                   compile=getattr(settings, "compile", False), **runtime)

    # The optimisation settings have no defaults here: each comes from the config, whose schema
    # holds the one default of each (pretrain.* and finetune.*), so no call can silently differ.
    def __init__(self, model: nn.Module, *, lr: float, total_steps: int, warmup_steps: int,
                 weight_decay: float, betas, eps: float, grad_clip: float, precision: str,
                 bias_correction: bool, accumulation_steps: int = 1, device: str | torch.device = "cpu",
                 data_parallel: bool = False, find_unused_parameters: bool = True, compile: bool = False):
        self.device = torch.device(device)
        if self.device.type == "cuda":
            # TF32 for whatever stays fp32 (the optimizer, fp32 runs): ~8x the fp32 matmul rate on
            # Ampere+ at a 10-bit mantissa, well inside training noise. CPUs are left exact.
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            # cuDNN attention, SDPA's first choice for bf16 on Hopper, builds a graph for every
            # new sequence length: 100-130 ms a step with our length-trimmed batches (measured on
            # an H200, benchmarks/README.md). The flash / memory-efficient kernels have no such cost.
            torch.backends.cuda.enable_cudnn_sdp(False)
        self.module = model.to(self.device)  # the bare model: evaluation and state
        self.model = self.module  # what training steps call: DDP-wrapped when data-parallel
        if data_parallel:
            # Heads an objective does not train (NSP and the pooler for MLM only and LTR) get no
            # gradient; DDP must be told, or it waits for them forever. Telling it costs a walk
            # of the autograd graph every step, so the caller says when it is needed.
            self.model = nn.parallel.DistributedDataParallel(
                self.module, device_ids=[self.device] if self.device.type == "cuda" else None,
                find_unused_parameters=find_unused_parameters)
        if compile:
            # torch.compile of the training module (the DDP wrapper included: its hooks stay outside
            # the compiled graphs); the first steps of each new batch shape pay the compile time.
            self.model = torch.compile(self.model)
        fused = self.device.type == "cuda"
        if bias_correction:
            self.optimizer = torch.optim.AdamW(parameter_groups(model, weight_decay), lr=lr, betas=tuple(betas),
                                               eps=eps, fused=fused or None)
        else:
            self.optimizer = BertAdam(parameter_groups(model, weight_decay), lr=lr, betas=betas, eps=eps, foreach=True)
        self.bias_correction = bias_correction
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, linear_schedule(warmup_steps, total_steps))
        self.grad_clip = grad_clip
        self.precision = resolve_precision(precision, self.device)
        self.autocast_dtype = AUTOCAST_DTYPES[self.precision]
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.accumulation_steps = accumulation_steps
        self.data_parallel = data_parallel
        # of the last step, before clipping: a () tensor on the device, read back when logged
        self.grad_norm: torch.Tensor | None = None
        self.steps_done = 0

    def autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def to_device(self, batch: dict) -> dict:
        """The batch on the device; for a pretraining model, with its labelled positions as fixed
        slots computed here on the host (``masking.prediction_slots``), after any split or shard,
        so the device never has to report how many there are."""
        if "labels" in batch and "lm_positions" not in batch and getattr(self.module, "takes_prediction_slots", False):
            batch = dict(batch)
            batch["lm_positions"], batch["lm_targets"] = prediction_slots(batch["labels"].cpu())
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def step(self, batch: dict):
        """One optimisation step on ``batch``; returns the model's output (losses detached).

        With ``accumulation_steps`` > 1 the batch runs as that many micro-batches whose gradients
        add up to the whole batch's: a pretraining loss is weighted by each micro-batch's share
        of the predicted tokens (masked-LM) and of the rows (NSP), any other by its share of rows,
        so the step equals the one-batch step (tests/test_engine.py)."""
        self.model.train()
        parts = split_batch(batch, self.accumulation_steps) if self.accumulation_steps > 1 else [batch]
        rows = len(batch["input_ids"])
        # counted on the host, where the loops build their batches: no device sync
        predictions = int((batch["labels"] != -100).sum()) if len(parts) > 1 and "labels" in batch else 0
        outputs = []
        for k, part in enumerate(parts):
            # DDP averages gradients over processes at each backward; only the last one need sync.
            sync = k == len(parts) - 1 or not self.data_parallel
            with (contextlib.nullcontext() if sync else self.model.no_sync()), self.autocast():
                output = self.model(**self.to_device(part))
                loss = output.loss if len(parts) == 1 else self._share(output, len(part["input_ids"]) / rows, predictions)
            self.scaler.scale(loss).backward()
            outputs.append((output, len(part["input_ids"]) / rows))
        self.scaler.unscale_(self.optimizer)
        # The norm is measured (and logged) even without clipping: an infinite max_norm clips nothing.
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip if self.grad_clip > 0 else math.inf)
        self.grad_norm = norm.detach()
        self.scaler.step(self.optimizer)  # skipped by fp16 loss scaling when a gradient overflowed
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps_done += 1
        return self._merge(outputs, predictions)

    @staticmethod
    def _share(output, row_share: float, predictions: int) -> torch.Tensor:
        if not hasattr(output, "lm_predictions"):
            return output.loss * row_share
        loss = output.lm_loss * (output.lm_predictions / max(1, predictions))
        if output.nsp_loss is not None:
            loss = loss + output.nsp_loss * row_share
        return loss

    @staticmethod
    def _merge(outputs: list, predictions: int):
        """One output for the step: the last micro-batch's, with its losses those of the whole batch."""
        last = outputs[-1][0]
        if len(outputs) == 1:
            # detached: a loss kept for logging must not keep the step's autograd graph alive
            last.loss = last.loss.detach()
            for name in ("lm_loss", "nsp_loss"):
                if getattr(last, name, None) is not None:
                    setattr(last, name, getattr(last, name).detach())
            return last
        if hasattr(last, "lm_predictions"):
            last.lm_loss = sum(o.lm_loss.detach() * (o.lm_predictions / max(1, predictions)) for o, _ in outputs)
            last.lm_predictions = sum(o.lm_predictions for o, _ in outputs)
            last.lm_correct = sum(o.lm_correct for o, _ in outputs)
            if last.nsp_loss is not None:
                last.nsp_loss = sum(o.nsp_loss.detach() * share for o, share in outputs)
                last.nsp_correct = sum(o.nsp_correct for o, _ in outputs)
            last.loss = last.lm_loss + (last.nsp_loss if last.nsp_loss is not None else 0.0)
        else:
            last.loss = sum(o.loss.detach() * share for o, share in outputs)
        return last

    @torch.no_grad()
    def evaluate(self, batch: dict):
        self.module.eval()
        with self.autocast():
            return self.module(**self.to_device(batch))

    def optimizer_settings(self) -> dict:
        """What metrics.json records of the optimizer."""
        group = self.optimizer.param_groups[0]
        return {"name": "AdamW" if self.bias_correction else "BertAdam (no bias correction)",
                "bias_correction": self.bias_correction, "betas": list(group["betas"]), "eps": group["eps"],
                "weight_decay": group["weight_decay"]}

    @property
    def lr(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def state_dict(self) -> dict:
        return {
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "steps_done": self.steps_done,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                    **({"cuda": torch.cuda.get_rng_state_all()} if cuda_rng_in_use() else {})},
        }

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.steps_done = state["steps_done"]
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        # Dropout on a GPU draws from the CUDA generators: without their state a resumed run
        # would not be the uninterrupted one. (A state saved on a CPU has none to restore.)
        if "cuda" in state["rng"] and cuda_rng_in_use():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])


class StepLog:
    """Per-step CSV log (one file per run: parallel jobs never share a file), and optionally the
    same scalars as TensorBoard events."""

    def __init__(self, path: str | os.PathLike, fields: list[str], resume_step: int = 0,
                 tensorboard_dir: str | os.PathLike | None = None):
        """``resume_step`` > 0 keeps the rows up to that step (a killed run may have logged
        steps past its last saved state, which the resumed run will log again); TensorBoard is
        told to purge its events past that step for the same reason."""
        self.events = None
        if tensorboard_dir is not None:
            try:
                import tensorboard  # noqa: F401  (torch's SummaryWriter writes through it)
            except ImportError:
                raise ImportError("pretrain.tensorboard: true needs the tensorboard package: pip install -r "
                                  "requirements.txt, or set pretrain.tensorboard: false.") from None
            from torch.utils.tensorboard import SummaryWriter

            self.events = SummaryWriter(str(tensorboard_dir), purge_step=resume_step + 1 if resume_step else None)
        exists = resume_step > 0 and os.path.exists(path)
        if exists:
            with open(path, newline="") as handle:
                rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= resume_step]
        self.handle = open(path, "w", newline="")
        self.writer = csv.DictWriter(self.handle, fieldnames=["step", "elapsed_s", *fields])
        self.writer.writeheader()
        if exists:
            self.writer.writerows(rows)
        self.start = time.perf_counter()

    def write(self, step: int, **values) -> None:
        self.writer.writerow({"step": step, "elapsed_s": round(time.perf_counter() - self.start, 3), **values})
        self.handle.flush()
        if self.events is not None:
            for name, value in values.items():
                if value is not None:
                    self.events.add_scalar(name, value, step)
            self.events.flush()

    def close(self) -> None:  # idempotent: an early return and the final cleanup may both close
        self.handle.close()
        if self.events is not None:
            self.events.close()
            self.events = None
