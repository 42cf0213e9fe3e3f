"""The pretraining loop: one ablation, from instances to an HF checkpoint and metrics.

Batches are a pure function of (seed, step): the epoch's permutation comes from
(seed, epoch) and the step's masks from (seed, step). A resumed run therefore sees exactly
the batches an uninterrupted run would have seen. Resumable state (and the intermediate
checkpoints and log it will publish) lives under ``state_dir``, outside Snakemake's declared
outputs, which Snakemake deletes before re-running a job.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .config import ablation_hash
from .batching import epoch_batches
from .distributed import Distributed
from .engine import Engine, StepLog, configure_threads, seed_everything
from .masking import Masker, MaskingProcedure
from .modeling import pretraining_model
from .objectives import OBJECTIVES
from .storage import atomic_dir, atomic_file, derive_seed, file_digest, stable_hash, tree_digest, write_json

log = logging.getLogger(__name__)


class InstanceBatches:
    """Fixed-size batches of stored instances, trimmed to their longest row; with
    ``group_by_length``, batches hold instances of similar length, so trimming removes most
    padding (instances of short documents are far shorter than max_seq_length)."""

    def __init__(self, path: str, batch_size: int, seed: int, group_by_length: bool = False):
        with np.load(path) as arrays:
            self.input_ids = torch.from_numpy(arrays["input_ids"].astype(np.int64))
            self.token_type_ids = torch.from_numpy(arrays["token_type_ids"].astype(np.int64))
            self.lengths = torch.from_numpy(arrays["lengths"].astype(np.int64))
            self.nsp = torch.from_numpy(arrays["next_sentence_label"].astype(np.int64))
        self.path, self.batch_size, self.seed, self.group_by_length = path, batch_size, seed, group_by_length
        self.steps_per_epoch = len(self) // batch_size
        self._epoch: tuple[int, list[list[int]]] | None = None  # (epoch, its batches), drawn once per epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def rows(self, index: torch.Tensor) -> dict:
        width = int(self.lengths[index].max())
        attention_mask = (torch.arange(width) < self.lengths[index, None]).long()
        return {
            "input_ids": self.input_ids[index, :width],
            "token_type_ids": self.token_type_ids[index, :width],
            "attention_mask": attention_mask,
            "next_sentence_label": self.nsp[index],
        }

    def for_step(self, step: int) -> dict:
        if not self.steps_per_epoch:
            raise ValueError(f"{self.path}: {len(self)} instances, fewer than one batch of {self.batch_size}; "
                             "use a larger corpus, a larger instances.dupe_factor or a smaller batch_size.")
        epoch, k = divmod(step, self.steps_per_epoch)
        if self._epoch is None or self._epoch[0] != epoch:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, "epoch", epoch))
            self._epoch = (epoch, epoch_batches(self.lengths, self.batch_size, generator, self.group_by_length,
                                                drop_last=True))
        return self.rows(torch.tensor(self._epoch[1][k]))

    def in_order(self, max_batches: int):
        for k in range(min(max_batches, math.ceil(len(self) / self.batch_size))):
            yield self.rows(torch.arange(k * self.batch_size, min(len(self), (k + 1) * self.batch_size)))


def pretraining_seeds(train: dict) -> dict[str, int]:
    """The three seeds of a run: ``pretrain.seed`` unless init_seed, data_seed or mask_seed sets
    one apart, so a user can vary one source of randomness and hold the other two."""
    return {f"{name}_seed": train["seed"] if train[f"{name}_seed"] is None else train[f"{name}_seed"]
            for name in ("init", "data", "mask")}


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, "mask", step))


@torch.no_grad()
def heldout_metrics(engine: Engine, objective, masker: Masker, batches: InstanceBatches, max_batches: int) -> dict:
    """Perplexity of held-out instances: masked-LM for MLM models, next-token for LTR ones.

    Masks come from a fixed seed so that every model is scored on the same corrupted inputs.
    """
    total_loss, predictions, correct, nsp_correct, rows = 0.0, 0, 0, 0, 0
    for k, batch in enumerate(batches.in_order(max_batches)):
        batch = objective.targets(batch, masker, step_generator(0, f"heldout-{k}"))
        out = engine.evaluate(batch)
        total_loss += float(out.lm_loss) * out.lm_predictions
        predictions += out.lm_predictions
        correct += out.lm_correct
        nsp_correct += out.nsp_correct
        rows += len(batch["input_ids"])
    metrics = {
        "heldout_perplexity": math.exp(total_loss / predictions),
        "heldout_perplexity_kind": "next-token" if objective.causal else "masked-LM",
        "heldout_lm_accuracy": correct / predictions,
        "heldout_predictions": predictions,
    }
    if objective.nsp:
        metrics["heldout_nsp_accuracy"] = nsp_correct / rows
    return metrics


def save_checkpoint(model, tokenizer, spec: dict, path: Path) -> None:
    with atomic_dir(path) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        write_json(tmp / "ablation.json", spec)


def _load_state(state_file: Path, engine: Engine) -> tuple[int, int]:
    """Restore a saved run; returns (steps done, tokens seen)."""
    if not state_file.exists():
        return 0, 0
    state = torch.load(state_file, map_location="cpu", weights_only=False)
    engine.load_state_dict(state["engine"])
    log.info("resumed from %s at step %d", state_file, engine.steps_done)
    return engine.steps_done, state["tokens_seen"]


def _save_state(state_file: Path, engine: Engine, tokens_seen: int) -> None:
    with atomic_file(state_file, "wb") as handle:
        torch.save({"engine": engine.state_dict(), "tokens_seen": tokens_seen}, handle)


def pretrain(spec: dict, instances_dir: str, tokenizer_dir: str, checkpoints_dir: str, metrics_path: str,
             log_path: str, state_root: str, threads: int | None = None, device: str | None = None,
             stop_after: int | None = None, short_instances_dir: str | None = None,
             corpus_dir: str | None = None) -> dict | None:
    """Pretrain one ablation. ``stop_after`` ends the run early (as a kill would) for tests.

    With ``pretrain.short_seq_steps`` > 0, those first steps draw their batches from
    ``short_instances_dir`` (instances built at ``short_seq_length``) and the rest from
    ``instances_dir``, each phase from its own first epoch (the paper's 128 -> 512 schedule).
    ``corpus_dir``, when given, is only digested into metrics.json (what the instances came from).

    Under ``torchrun`` every rank trains on its share of each step's batch (DDP) and only rank 0
    writes; the others return None. The logged loss is rank 0's share of the batch.
    """
    from .tokenizer import load_tokenizer

    configure_threads(threads)
    dist = Distributed.from_env()
    device = dist.device(device)
    dist.init(device)
    train = spec["pretrain"]
    objective = OBJECTIVES[spec["objective"]]
    # Resumable state is keyed by the spec *and* the data it trains on, so a changed corpus or
    # vocabulary never resumes from a stale state.
    spec_hash = ablation_hash(spec)
    short_steps = train["short_seq_steps"]
    if short_steps and not short_instances_dir:
        raise ValueError(f"pretrain.short_seq_steps={short_steps} needs the instances of length "
                         f"{train['short_seq_length']} (short_instances_dir).")
    data_dirs = [instances_dir, short_instances_dir] if short_steps else [instances_dir]
    state_key = stable_hash([spec_hash, *(file_digest(os.path.join(d, "train.npz")) for d in data_dirs),
                             file_digest(os.path.join(tokenizer_dir, "tokenizer.json"))])
    state_dir = Path(state_root) / state_key
    state_dir.mkdir(parents=True, exist_ok=True)

    tokenizer = load_tokenizer(tokenizer_dir)
    seeds = pretraining_seeds(train)
    batches = InstanceBatches(os.path.join(instances_dir, "train.npz"), train["batch_size"], seeds["data_seed"],
                              train["group_by_length"])
    short = (InstanceBatches(os.path.join(short_instances_dir, "train.npz"), train["batch_size"], seeds["data_seed"],
                             train["group_by_length"]) if short_steps else None)
    heldout = InstanceBatches(os.path.join(instances_dir, "heldout.npz"), train["batch_size"], seeds["data_seed"])
    masker = Masker.for_tokenizer(MaskingProcedure.from_config(spec["masking"]), tokenizer)

    seed_everything(seeds["init_seed"])
    model = pretraining_model(spec["model"], len(tokenizer), tokenizer.pad_token_id, objective.causal)
    engine = Engine(model, lr=train["lr"], total_steps=train["steps"], warmup_steps=train["warmup_steps"],
                    weight_decay=train["weight_decay"], betas=train["adam_betas"], eps=train["adam_eps"],
                    grad_clip=train["grad_clip"], precision=train["precision"], device=device,
                    data_parallel=dist.enabled, bias_correction=train["adam_bias_correction"])
    start, tokens = _load_state(state_dir / "state.pt", engine)
    step_log = (StepLog(state_dir / "log.csv", ["loss", "lm_loss", "nsp_loss", "lr", "tokens"], resume_step=start)
                if dist.is_main else None)
    log.info("pretraining %s (%s, %s): %d parameters, %d instances, steps %d..%d on %s (rank %d of %d)",
             spec["name"], objective.name, spec["packing"], sum(p.numel() for p in model.parameters()),
             len(batches), start, train["steps"], device, dist.rank, dist.world_size)

    tokens_at_start, began, recent, final_loss = tokens, time.perf_counter(), [], None
    progress = tqdm(range(start, train["steps"]), initial=start, total=train["steps"], mininterval=10,
                    desc=f"pretrain {spec['name']}", disable=not dist.is_main)
    for step in progress:
        rows = short.for_step(step) if step < short_steps else batches.for_step(step - short_steps)
        batch = objective.targets(rows, masker, step_generator(seeds["mask_seed"], step))
        out = engine.step(dist.shard(batch))
        tokens += int(batch["attention_mask"].sum())
        recent.append(float(out.loss))
        done = step + 1
        if not dist.is_main:
            if stop_after is not None and done >= stop_after:
                break
            continue
        if done % train["log_every"] == 0 or done == train["steps"]:
            step_log.write(done, loss=round(float(np.mean(recent)), 5), lm_loss=round(out.lm_loss.item(), 5),
                           nsp_loss=None if out.nsp_loss is None else round(out.nsp_loss.item(), 5),
                           lr=engine.lr, tokens=tokens)
            progress.set_postfix(loss=f"{np.mean(recent):.3f}")
            final_loss, recent = float(np.mean(recent)), []
        if done in train["save_steps"]:
            save_checkpoint(model, tokenizer, {**spec, "spec_hash": spec_hash, "step": done}, state_dir / f"step-{done}")
        if done % train["state_every"] == 0 or done == train["steps"]:
            _save_state(state_dir / "state.pt", engine, tokens)
        if stop_after is not None and done >= stop_after:
            step_log.close()
            return None
    if not dist.is_main or stop_after is not None:
        dist.close()
        return None
    step_log.close()
    elapsed = time.perf_counter() - began

    metrics = {
        "ablation": spec["name"], "spec_hash": spec_hash, "objective": objective.name, "packing": spec["packing"],
        "model": spec["model"], "masking": spec["masking"], "steps": train["steps"], "resumed_from_step": start, "parameters": sum(p.numel() for p in model.parameters()),
        "tokens_seen": tokens, "seconds_this_run": round(elapsed, 2),
        "tokens_per_second": round((tokens - tokens_at_start) / elapsed, 1) if tokens > tokens_at_start else None,
        "final_train_loss": final_loss,
        "optimizer": engine.optimizer_settings(), "seeds": seeds,
        # What it trained on, by content (full SHA-256), so two provenance files can be compared.
        "inputs": {"tokenizer": file_digest(os.path.join(tokenizer_dir, "tokenizer.json"), 64),
                   **{f"{phase}{split}_instances": file_digest(os.path.join(d, f"{split}.npz"), 64)
                      for phase, d in zip(("", "short_"), data_dirs) for split in ("train", "heldout")},
                   **({"corpus": tree_digest(corpus_dir)} if corpus_dir else {})},
        "recipe": {"architecture": spec["model"]["architecture"], "lr": train["lr"], "dropout": spec["model"]["dropout"],
                   "batch_size": train["batch_size"], "warmup_steps": train["warmup_steps"],
                   "schedule": "linear warmup, then linear decay to 0", "weight_decay": train["weight_decay"]},
        "device": device, "precision": engine.precision, "threads": torch.get_num_threads(),
        "data_parallel_processes": dist.world_size,
        **heldout_metrics(engine, objective, masker, heldout, train["eval_batches"]),
    }
    with atomic_dir(checkpoints_dir) as tmp:
        save_checkpoint(model, tokenizer, {**spec, "spec_hash": spec_hash, "step": train["steps"]}, tmp / "final")
        for saved in train["save_steps"]:
            shutil.copytree(state_dir / f"step-{saved}", tmp / f"step-{saved}")
    with atomic_file(log_path) as handle:
        handle.write((state_dir / "log.csv").read_text())
    write_json(metrics_path, metrics)
    log.info("pretrain %s: %s", spec["name"], metrics)
    dist.close()
    return metrics


def main(argv: list[str] | None = None) -> None:
    """``python -m bert_ablation.pretrain ARGS.json``: the entry point torchrun starts on every
    rank; ARGS.json holds pretrain()'s keyword arguments. Logs go to stderr (rank 0 only),
    which the launching job sends to its log file."""
    import json
    import sys

    (path,) = argv if argv is not None else sys.argv[1:]
    with open(path, encoding="utf-8") as handle:
        kwargs = json.load(handle)
    if Distributed.from_env().is_main:
        from .workflow import LOG_FORMAT

        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    pretrain(**kwargs)


if __name__ == "__main__":
    main()
