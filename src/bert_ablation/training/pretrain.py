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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..data.instances import STATIC_FIELDS, InstanceStore, instances_digest
from ..models.masking import Masker, MaskingProcedure
from ..models.modeling import pretraining_model
from ..models.objectives import OBJECTIVES
from ..plan import ablation_hash
from ..rehearsal import peak_memory
from ..storage import atomic_dir, atomic_file, derive_seed, file_digest, stable_hash, tree_digest, write_json
from .batching import epoch_batch_matrix
from .distributed import Distributed
from .engine import Engine, StepLog, configure_threads, seed_everything

log = logging.getLogger(__name__)


class InstanceBatches:
    """Fixed-size batches of stored instances (read from disk row by row, across shards), trimmed to their
    longest row; with ``group_by_length``, batches hold instances of similar length, so trimming
    removes most padding (instances of short documents are far shorter than max_seq_length)."""

    def __init__(self, shard_dirs: list[str] | str, split: str, batch_size: int, seed: int,
                 group_by_length: bool = False):
        self.store = InstanceStore(shard_dirs, split)
        self.path = self.store.paths[0] if len(self.store.paths) == 1 else f"{len(self.store.paths)} shards of {split}"
        self.batch_size, self.seed, self.group_by_length = batch_size, seed, group_by_length
        self.lengths = torch.from_numpy(self.store.lengths)
        self.steps_per_epoch = len(self) // batch_size
        self._epoch: tuple[int, torch.Tensor] | None = None  # (epoch, its batches), drawn once per epoch

    def __len__(self) -> int:
        return len(self.store)

    def rows(self, index: torch.Tensor) -> dict:
        width = int(self.lengths[index].max())
        rows = self.store.gather(index.numpy(), width, ("segment_b", "next_sentence_label", *STATIC_FIELDS))
        lengths = self.lengths[index].long()  # in memory already: not read again
        positions = torch.arange(width)
        inside = positions < lengths[:, None]
        return {
            "input_ids": torch.from_numpy(rows["input_ids"]),
            "token_type_ids": ((positions >= torch.from_numpy(rows["segment_b"])[:, None]) & inside).long(),
            "attention_mask": inside.long(),
            "next_sentence_label": torch.from_numpy(rows["next_sentence_label"]),
            **{field: torch.from_numpy(rows[field]) for field in STATIC_FIELDS if field in rows},
        }

    def for_step(self, step: int) -> dict:
        if not self.steps_per_epoch:
            raise ValueError(f"{self.path}: {len(self)} instances, fewer than one batch of {self.batch_size}; "
                             "use a larger corpus, a larger instances.dupe_factor or a smaller batch_size.")
        epoch, k = divmod(step, self.steps_per_epoch)
        if self._epoch is None or self._epoch[0] != epoch:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, "epoch", epoch))
            self._epoch = (epoch, epoch_batch_matrix(self.lengths, self.batch_size, generator, self.group_by_length))
        return self.rows(self._epoch[1][k])

    def in_order(self, max_batches: int):
        for k in range(min(max_batches, math.ceil(len(self) / self.batch_size))):
            yield self.rows(torch.arange(k * self.batch_size, min(len(self), (k + 1) * self.batch_size)))


def corpus_digest(shard_dirs: list[str]) -> str:
    """One SHA-256 for the corpus: its shard folders' tree digests (the shard itself when one)."""
    digests = [tree_digest(d) for d in shard_dirs]
    return digests[0] if len(digests) == 1 else stable_hash(digests, 64)


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


def _shards(dirs: list[str] | str | None) -> list[str]:
    return [] if not dirs else [str(dirs)] if isinstance(dirs, (str, os.PathLike)) else [str(d) for d in dirs]


@dataclass
class PretrainingRun:
    """What ``prepare`` sets up for one ablation: the data, the model in its engine, where state goes."""

    spec: dict
    objective: object
    spec_hash: str
    phases: dict  # "" -> the instance shard folders; "short_" -> those of the short-sequence phase
    state_dir: Path
    tokenizer: object
    seeds: dict
    batches: InstanceBatches
    short: InstanceBatches | None
    heldout: InstanceBatches
    masker: Masker
    engine: Engine
    dist: Distributed
    step_seconds: list = field(default_factory=list)  # each step of this process, data and masks included

    @property
    def train(self) -> dict:
        return self.spec["pretrain"]

    def rows(self, step: int) -> dict:
        """The instances of ``step``: the short-sequence phase first, then the main one, each from its first epoch."""
        short_steps = self.train["short_seq_steps"]
        return self.short.for_step(step) if step < short_steps else self.batches.for_step(step - short_steps)


def prepare(spec: dict, instances_dir, tokenizer_dir: str, state_root: str, device: str | None,
            short_instances_dir, dist: Distributed) -> PretrainingRun:
    from ..data.tokenizer import load_tokenizer

    train = spec["pretrain"]
    short_steps = train["short_seq_steps"]
    if short_steps and not short_instances_dir:
        raise ValueError(f"pretrain.short_seq_steps={short_steps} needs the instances of length "
                         f"{train['short_seq_length']} (short_instances_dir).")
    phases = {"": _shards(instances_dir), **({"short_": _shards(short_instances_dir)} if short_steps else {})}
    # Resumable state is keyed by the spec *and* the data it trains on, so a changed corpus or
    # vocabulary never resumes from a stale state.
    spec_hash = ablation_hash(spec)
    state_key = stable_hash([spec_hash, *(instances_digest(dirs, "train") for dirs in phases.values()),
                             file_digest(os.path.join(tokenizer_dir, "tokenizer.json"))])
    state_dir = Path(state_root) / state_key
    state_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(tokenizer_dir)
    seeds = pretraining_seeds(train)
    batches = InstanceBatches(phases[""], "train", train["batch_size"], seeds["data_seed"], train["group_by_length"])
    short = (InstanceBatches(phases["short_"], "train", train["batch_size"], seeds["data_seed"],
                             train["group_by_length"]) if short_steps else None)
    heldout = InstanceBatches(phases[""], "heldout", train["batch_size"], seeds["data_seed"])
    masker = Masker.for_tokenizer(MaskingProcedure.from_config(spec["masking"]), tokenizer)
    objective = OBJECTIVES[spec["objective"]]
    seed_everything(seeds["init_seed"])
    model = pretraining_model(spec["model"], len(tokenizer), tokenizer.pad_token_id, objective.causal)
    engine = Engine.from_settings(model, train, lr=train["lr"], total_steps=train["steps"],
                                  warmup_steps=train["warmup_steps"], device=dist.device(device),
                                  data_parallel=dist.enabled)
    return PretrainingRun(spec, objective, spec_hash, phases, state_dir, tokenizer, seeds, batches, short, heldout,
                          masker, engine, dist)


def train_steps(run: PretrainingRun, start: int, tokens: int, step_log: StepLog | None,
                stop_after: int | None) -> tuple[int, float | None, bool]:
    """Steps start..pretrain.steps (or until ``stop_after``, as a kill would); returns the tokens
    seen, the last logged loss and whether the run is complete. Only rank 0 logs and saves."""
    train, engine, dist = run.train, run.engine, run.dist
    end = train["steps"] if stop_after is None else min(train["steps"], stop_after)
    recent, final_loss, logged = [], None, (time.perf_counter(), tokens)  # time and tokens at the last log row
    progress = tqdm(range(start, end), initial=start, total=train["steps"], mininterval=10,
                    desc=f"pretrain {run.spec['name']}", disable=not dist.is_main)
    for step in progress:
        began = time.perf_counter()
        batch = run.objective.targets(run.rows(step), run.masker, step_generator(run.seeds["mask_seed"], step))
        out = engine.step(dist.shard(batch))
        tokens += int(batch["attention_mask"].sum())
        recent.append(float(out.loss))  # float() waits for the device: the step is done
        run.step_seconds.append(round(time.perf_counter() - began, 4))
        done = step + 1
        if not dist.is_main:
            continue
        if done % train["log_every"] == 0 or done == train["steps"]:
            now = time.perf_counter()
            rate = (tokens - logged[1]) / max(now - logged[0], 1e-9)  # this process's share x the processes
            logged, final_loss = (now, tokens), float(np.mean(recent))
            step_log.write(done, loss=round(final_loss, 5), lm_loss=round(out.lm_loss.item(), 5),
                           nsp_loss=None if out.nsp_loss is None else round(out.nsp_loss.item(), 5),
                           lr=engine.lr, tokens=tokens, tokens_per_second=round(rate, 1),
                           grad_norm=round(engine.grad_norm, 5))
            progress.set_postfix(loss=f"{final_loss:.3f}")
            recent = []
        if done in train["save_steps"]:
            save_checkpoint(engine.module, run.tokenizer, {**run.spec, "spec_hash": run.spec_hash, "step": done},
                            run.state_dir / f"step-{done}")
        if done % train["state_every"] == 0 or done == train["steps"]:
            _save_state(run.state_dir / "state.pt", engine, tokens)
    return tokens, final_loss, end == train["steps"]


def publish(run: PretrainingRun, checkpoints_dir: str, metrics_path: str, log_path: str, tokenizer_dir: str,
            corpus_dir, start: int, tokens: int, tokens_at_start: int, final_loss: float | None, elapsed: float) -> dict:
    """The declared outputs of a complete run: checkpoints, the step log and metrics.json."""
    train, engine, model = run.train, run.engine, run.engine.module
    metrics = {
        "ablation": run.spec["name"], "spec_hash": run.spec_hash, "objective": run.objective.name,
        "packing": run.spec["packing"], "model": run.spec["model"], "masking": run.spec["masking"],
        "steps": train["steps"], "resumed_from_step": start, "parameters": sum(p.numel() for p in model.parameters()),
        "tokens_seen": tokens, "seconds_this_run": round(elapsed, 2),
        "tokens_per_second": round((tokens - tokens_at_start) / elapsed, 1) if tokens > tokens_at_start else None,
        "final_train_loss": final_loss,
        "optimizer": engine.optimizer_settings(), "seeds": run.seeds,
        # What it trained on, by content (full SHA-256), so two provenance files can be compared.
        "inputs": {"tokenizer": file_digest(os.path.join(tokenizer_dir, "tokenizer.json"), 64),
                   **{f"{phase}{split}_instances": instances_digest(dirs, split)
                      for phase, dirs in run.phases.items() for split in ("train", "heldout")},
                   **({"corpus": corpus_digest(_shards(corpus_dir))} if corpus_dir else {})},
        "recipe": {"architecture": run.spec["model"]["architecture"], "lr": train["lr"],
                   "dropout": run.spec["model"]["dropout"], "batch_size": train["batch_size"],
                   "warmup_steps": train["warmup_steps"], "schedule": "linear warmup, then linear decay to 0",
                   "weight_decay": train["weight_decay"]},
        "device": str(engine.device), "precision": engine.precision, "threads": torch.get_num_threads(),
        "data_parallel_processes": run.dist.world_size,
        # what a rehearsal extrapolates from (bert_ablation.rehearsal): steps from resumed_from_step on
        "step_seconds": run.step_seconds, **peak_memory(engine.device),
        **heldout_metrics(engine, run.objective, run.masker, run.heldout, train["eval_batches"]),
    }
    with atomic_dir(checkpoints_dir) as tmp:
        save_checkpoint(model, run.tokenizer, {**run.spec, "spec_hash": run.spec_hash, "step": train["steps"]},
                        tmp / "final")
        for saved in train["save_steps"]:
            shutil.copytree(run.state_dir / f"step-{saved}", tmp / f"step-{saved}")
    with atomic_file(log_path) as handle:
        handle.write((run.state_dir / "log.csv").read_text())
    write_json(metrics_path, metrics)
    log.info("pretrain %s: %s", run.spec["name"], metrics)
    return metrics


def pretrain(spec: dict, instances_dir: list[str] | str, tokenizer_dir: str, checkpoints_dir: str, metrics_path: str,
             log_path: str, state_root: str, threads: int | None = None, device: str | None = None,
             stop_after: int | None = None, short_instances_dir: list[str] | str | None = None,
             corpus_dir: list[str] | str | None = None, tensorboard_dir: str | None = None) -> dict | None:
    """Pretrain one ablation: prepare, train, publish. ``stop_after`` ends the run early (as a
    kill would: state saved, nothing published) for tests.
    ``instances_dir``: the instance shard folders (or one), read row by row.

    With ``pretrain.short_seq_steps`` > 0, those first steps draw their batches from
    ``short_instances_dir`` (instances built at ``short_seq_length``) and the rest from
    ``instances_dir``, each phase from its own first epoch (the paper's 128 -> 512 schedule).
    ``corpus_dir``, when given, is only digested into metrics.json (what the instances came from).
    ``tensorboard_dir``: where the log's scalars also go as TensorBoard events (pretrain.tensorboard).

    Under ``torchrun`` every rank trains on its share of each step's batch (DDP) and only rank 0
    writes; the others return None. The logged loss is rank 0's share of the batch.
    """
    configure_threads(threads)
    dist = Distributed.from_env()
    dist.init(dist.device(device))
    step_log = None
    try:
        run = prepare(spec, instances_dir, tokenizer_dir, state_root, device, short_instances_dir, dist)
        start, tokens = _load_state(run.state_dir / "state.pt", run.engine)
        if dist.is_main:
            step_log = StepLog(run.state_dir / "log.csv", ["loss", "lm_loss", "nsp_loss", "lr", "tokens",
                                                           "tokens_per_second", "grad_norm"], resume_step=start,
                               tensorboard_dir=tensorboard_dir if run.train["tensorboard"] else None)
        log.info("pretraining %s (%s, %s): %d parameters, %d instances, steps %d..%d on %s (rank %d of %d)",
                 spec["name"], run.objective.name, spec["packing"],
                 sum(p.numel() for p in run.engine.module.parameters()), len(run.batches), start,
                 run.train["steps"], run.engine.device, dist.rank, dist.world_size)
        began = time.perf_counter()
        seen, final_loss, complete = train_steps(run, start, tokens, step_log, stop_after)
        if not (complete and dist.is_main):
            return None
        step_log.close()
        return publish(run, checkpoints_dir, metrics_path, log_path, tokenizer_dir, corpus_dir, start, seen, tokens,
                       final_loss, time.perf_counter() - began)
    finally:  # every path, an early stop or an error included, ends the log and the process group
        if step_log is not None:
            step_log.close()
        dist.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m bert_ablation.training.pretrain ARGS.json``: the entry point torchrun starts on every
    rank; ARGS.json holds pretrain()'s keyword arguments. Logs go to stderr (rank 0 only),
    which the launching job sends to its log file."""
    import json
    import sys

    (path,) = argv if argv is not None else sys.argv[1:]
    with open(path, encoding="utf-8") as handle:
        kwargs = json.load(handle)
    if Distributed.from_env().is_main:
        from ..workflow import LOG_FORMAT

        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    pretrain(**kwargs)


if __name__ == "__main__":
    main()
