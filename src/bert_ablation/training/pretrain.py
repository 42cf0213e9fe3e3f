"""The pretraining loop: one ablation, from instances to an HF checkpoint and metrics.

Batches are a pure function of (seed, step): the epoch's permutation comes from
(seed, epoch) and the step's masks from (seed, step). A resumed run therefore sees exactly
the batches an uninterrupted run would have seen. Resumable state (and the intermediate
checkpoints and log it will publish) lives under ``state_dir``, outside Snakemake's declared
outputs, which Snakemake deletes before re-running a job.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from ..data.instance_store import instances_digest
from ..data.tokenizer import load_tokenizer
from ..evaluation import health
from ..models.masking import Masker, MaskingProcedure
from ..models.modeling import pretraining_model
from ..models.objectives import OBJECTIVES
from ..plan import ablation_hash
from ..runtime import LOG_FORMAT, peak_memory
from ..settings import AblationSpec, PretrainSettings
from ..storage import atomic_dir, atomic_file, file_digest, stable_hash, tree_digest, write_json
from .batching import Prefetcher
from .distributed import Distributed
from .engine import Engine, StepLog, configure_threads, seed_everything
from .heldout import heldout_metrics, last_layer_cosine, unigram_log_probs
from .instance_batches import InstanceBatches, step_generator

log = logging.getLogger(__name__)


def corpus_digest(shard_dirs: list[str]) -> str:
    """One SHA-256 for the corpus: its shard folders' tree digests (the shard itself when one)."""
    digests = [tree_digest(d) for d in shard_dirs]
    return digests[0] if len(digests) == 1 else stable_hash(digests, 64)


def _logged_losses(log_file: Path) -> list[tuple[int, float]]:
    """(step, training loss) of every row of the run's step log."""
    with open(log_file, encoding="utf-8") as handle:
        return [(int(row["step"]), float(row["loss"])) for row in csv.DictReader(handle) if row.get("loss")]


def check_health(run: PretrainingRun, metrics: dict) -> dict:
    """The run's ``health`` record; logs the WARNING block for a run that did not learn and, under
    ``pretrain.health: fail``, raises with it."""
    mode = health.check_mode(run.train.health)
    record = health.classify(metrics, _logged_losses(run.state_dir / "log.csv"))
    if record["status"] in health.NOT_LEARNT:
        block = health.warning_block(run.spec.name, record, mode)
        log.warning("\n%s", block)
        if mode == "fail":
            raise health.PretrainingHealthError(block)
    else:
        log.info("pretrain %s: health %s (held-out perplexity %s, unigram %s, last-layer cosine %s)",
                 run.spec.name, record["status"], metrics.get("heldout_perplexity"),
                 metrics.get("unigram_perplexity"), metrics.get("last_layer_cosine"))
    return record


def save_checkpoint(model, tokenizer, spec: dict, path: Path) -> None:
    """The model and its tokenizer as an HF checkpoint, with ``spec`` (the run's document and what
    it became: hash, step, health) as ablation.json."""
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

    spec: AblationSpec
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
    def train(self) -> PretrainSettings:
        return self.spec.pretrain

    def checkpoint_document(self, **became) -> dict:
        """ablation.json of a checkpoint: the run's spec document, its hash and what ``became``."""
        return {**self.spec.to_dict(), "spec_hash": self.spec_hash, **became}

    def rows(self, step: int) -> dict:
        """The instances of ``step``: the short-sequence phase first, then the main one, each from its first epoch."""
        short_steps = self.train.short_seq_steps
        return self.short.for_step(step) if step < short_steps else self.batches.for_step(step - short_steps)


def prepare(spec: AblationSpec, instances_dir, tokenizer_dir: str, state_root: str, device: str | None,
            short_instances_dir, dist: Distributed) -> PretrainingRun:
    train = spec.pretrain
    short_steps = train.short_seq_steps
    if short_steps and not short_instances_dir:
        raise ValueError(f"pretrain.short_seq_steps={short_steps} needs the instances of length "
                         f"{train.short_seq_length} (short_instances_dir).")
    phases = {"": _shards(instances_dir), **({"short_": _shards(short_instances_dir)} if short_steps else {})}
    # Resumable state is keyed by the spec *and* the data it trains on, so a changed corpus or
    # vocabulary never resumes from a stale state.
    spec_hash = ablation_hash(spec.to_dict())
    state_key = stable_hash([spec_hash, *(instances_digest(dirs, "train") for dirs in phases.values()),
                             file_digest(os.path.join(tokenizer_dir, "tokenizer.json"))])
    state_dir = Path(state_root) / state_key
    state_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(tokenizer_dir)
    seeds = train.seeds()
    batches = InstanceBatches(phases[""], "train", train.batch_size, seeds["data_seed"], train.group_by_length)
    short = (InstanceBatches(phases["short_"], "train", train.batch_size, seeds["data_seed"],
                             train.group_by_length) if short_steps else None)
    heldout = InstanceBatches(phases[""], "heldout", train.batch_size, seeds["data_seed"])
    masker = Masker.for_tokenizer(MaskingProcedure.from_config(spec.masking), tokenizer)
    objective = OBJECTIVES[spec.objective]
    seed_everything(seeds["init_seed"])
    model = pretraining_model(spec.model, len(tokenizer), tokenizer.pad_token_id, objective.causal)
    engine = Engine.from_settings(model, train, lr=train.lr, total_steps=train.steps,
                                  warmup_steps=train.warmup_steps, device=dist.device(device),
                                  data_parallel=dist.enabled,
                                  # only NSP trains the pooler and its classifier (see Engine)
                                  find_unused_parameters=not objective.nsp)
    return PretrainingRun(spec, objective, spec_hash, phases, state_dir, tokenizer, seeds, batches, short, heldout,
                          masker, engine, dist)


def step_batch(run: PretrainingRun, step: int) -> tuple[dict, int]:
    """What this process trains on at ``step`` and the step's tokens (all processes together).

    The masks of dynamic masking are drawn over the whole global batch (so the run sees the
    same data whatever the number of processes); every rank then builds that batch and keeps its
    rows. Without random draws (LTR, static masking) a rank reads and builds only its own rows:
    the same rows, the same labels, 1/world of the work."""
    dist, train = run.dist, run.train
    phase, k = (run.short, step) if step < train.short_seq_steps else (run.batches, step - train.short_seq_steps)
    index = phase.index_for_step(k)
    tokens = int(phase.lengths[index].sum())  # = the global batch's attention_mask.sum(), from memory
    if dist.enabled and (run.objective.causal or phase.static_masks):
        width = int(phase.lengths[index].max())  # the global batch's width, as a global build would trim
        rows = phase.rows(index[dist.rank:: dist.world_size], width)
        return run.objective.targets(rows, run.masker, step_generator(run.seeds["mask_seed"], step)), tokens
    batch = run.objective.targets(phase.rows(index), run.masker, step_generator(run.seeds["mask_seed"], step))
    return dist.shard(batch), tokens


def train_steps(run: PretrainingRun, start: int, tokens: int, step_log: StepLog | None,
                stop_after: int | None) -> tuple[int, float | None, bool]:
    """Steps start..pretrain.steps (or until ``stop_after``, as a kill would); returns the tokens
    seen, the last logged loss and whether the run is complete. Only rank 0 logs and saves.

    Nothing here waits for the device between logs: losses and the gradient norm are summed as
    device tensors and read back every ``log_every`` steps; on CUDA the next batches are built
    (and pinned) on a background thread while the device computes."""
    train, engine, dist = run.train, run.engine, run.dist
    end = train.steps if stop_after is None else min(train.steps, stop_after)
    progress = tqdm(initial=start, total=train.steps, mininterval=10,
                    desc=f"pretrain {run.spec.name}", disable=not dist.is_main)
    on_cuda = engine.device.type == "cuda"
    batches = (Prefetcher(lambda step: step_batch(run, step), range(start, end), pin=True) if on_cuda else
               ((step, step_batch(run, step)) for step in range(start, end)))
    try:
        tokens, final_loss = _loop(run, batches, progress, tokens, step_log)
    finally:  # an error or a stop ends the prefetching thread too
        if isinstance(batches, Prefetcher):
            batches.close()
        progress.close()
    return tokens, final_loss, end == train.steps


def _loop(run: PretrainingRun, batches, progress, tokens: int, step_log: StepLog | None) -> tuple[int, float | None]:
    train, engine, dist = run.train, run.engine, run.dist
    loss_sum, summed, final_loss = None, 0, None  # the losses since the last log row, on the device
    logged = (time.perf_counter(), tokens)  # time and tokens at the last log row
    for step, (batch, step_tokens) in batches:
        out = engine.step(batch)
        progress.update()
        tokens += step_tokens
        loss_sum = out.loss.detach() if loss_sum is None else loss_sum + out.loss.detach()
        summed += 1
        done = step + 1
        if not dist.is_main:
            continue
        if done % train.log_every == 0 or done == train.steps:
            final_loss = float(loss_sum) / summed  # the one device sync of the logging interval
            now = time.perf_counter()
            rate = (tokens - logged[1]) / max(now - logged[0], 1e-9)  # all processes' tokens
            # what a rehearsal extrapolates from: the interval's mean step (per step, as it logs every step)
            run.step_seconds.extend([round((now - logged[0]) / summed, 4)] * summed)
            logged = (now, tokens)
            step_log.write(done, loss=round(final_loss, 5), lm_loss=round(out.lm_loss.item(), 5),
                           nsp_loss=None if out.nsp_loss is None else round(out.nsp_loss.item(), 5),
                           lr=engine.lr, tokens=tokens, tokens_per_second=round(rate, 1),
                           grad_norm=round(float(engine.grad_norm), 5))
            progress.set_postfix(loss=f"{final_loss:.3f}")
            loss_sum, summed = None, 0
        if done in train.save_steps:
            save_checkpoint(engine.module, run.tokenizer, run.checkpoint_document(step=done), run.state_dir / f"step-{done}")
        if done % train.state_every == 0 or done == train.steps:
            _save_state(run.state_dir / "state.pt", engine, tokens)
    return tokens, final_loss


def publish(run: PretrainingRun, checkpoints_dir: str, metrics_path: str, log_path: str, tokenizer_dir: str,
            corpus_dir, start: int, tokens: int, tokens_at_start: int, final_loss: float | None, elapsed: float) -> dict:
    """The declared outputs of a complete run: checkpoints, the step log and metrics.json."""
    train, engine, model = run.train, run.engine, run.engine.module
    metrics = {
        "ablation": run.spec.name, "spec_hash": run.spec_hash, "objective": run.objective.name,
        "packing": run.spec.packing, "model": dataclasses.asdict(run.spec.model),
        "masking": dataclasses.asdict(run.spec.masking), "steps": train.steps, "resumed_from_step": start,
        "parameters": sum(p.numel() for p in model.parameters()),
        "tokens_seen": tokens, "seconds_this_run": round(elapsed, 2),
        "tokens_per_second": round((tokens - tokens_at_start) / elapsed, 1) if tokens > tokens_at_start else None,
        "final_train_loss": final_loss,
        "optimizer": engine.optimizer_settings(), "seeds": run.seeds,
        # What it trained on, by content (full SHA-256), so two provenance files can be compared.
        "inputs": {"tokenizer": file_digest(os.path.join(tokenizer_dir, "tokenizer.json"), 64),
                   **{f"{phase}{split}_instances": instances_digest(dirs, split)
                      for phase, dirs in run.phases.items() for split in ("train", "heldout")},
                   **({"corpus": corpus_digest(_shards(corpus_dir))} if corpus_dir else {})},
        "recipe": {"architecture": run.spec.model.architecture, "lr": train.lr,
                   "dropout": run.spec.model.dropout, "batch_size": train.batch_size,
                   "warmup_steps": train.warmup_steps, "schedule": "linear warmup, then linear decay to 0",
                   "weight_decay": train.weight_decay},
        "device": str(engine.device), "precision": engine.precision, "threads": torch.get_num_threads(),
        "data_parallel_processes": run.dist.world_size,
        # what a rehearsal extrapolates from (bert_ablation.rehearsal): steps from resumed_from_step on
        "step_seconds": run.step_seconds, **peak_memory(engine.device),
        **heldout_metrics(engine, run.objective, run.masker, run.heldout, train.eval_batches,
                          unigram_log_probs(run.objective, run.masker, run.batches, len(run.tokenizer))),
        "last_layer_cosine": last_layer_cosine(engine, run.spec.model.architecture, run.heldout),
    }
    # Before anything is published: under pretrain.health: fail a run that did not learn leaves no outputs.
    metrics["health"] = check_health(run, metrics)
    with atomic_dir(checkpoints_dir) as tmp:
        # The health status travels with the final checkpoint: fine-tuning does not retry collapsed
        # restarts of an encoder that did not learn (a lower rate cannot fix the encoder).
        save_checkpoint(model, run.tokenizer, run.checkpoint_document(step=train.steps,
                                                                      health=metrics["health"]["status"]), tmp / "final")
        for saved in train.save_steps:
            shutil.copytree(run.state_dir / f"step-{saved}", tmp / f"step-{saved}")
    with atomic_file(log_path) as handle:
        handle.write((run.state_dir / "log.csv").read_text())
    write_json(metrics_path, metrics)
    log.info("pretrain %s: %s", run.spec.name, metrics)
    return metrics


def pretrain(spec: AblationSpec | dict, instances_dir: list[str] | str, tokenizer_dir: str, checkpoints_dir: str, metrics_path: str,
             log_path: str, state_root: str, threads: int | None = None, device: str | None = None,
             stop_after: int | None = None, short_instances_dir: list[str] | str | None = None,
             corpus_dir: list[str] | str | None = None, tensorboard_dir: str | None = None) -> dict | None:
    """Pretrain one ablation: prepare, train, publish. ``spec``: the run's spec, typed or as its
    JSON document (the job's params; torchrun's arguments file). ``stop_after`` ends the run early
    (as a kill would: state saved, nothing published) for tests.
    ``instances_dir``: the instance shard folders (or one), read row by row.

    With ``pretrain.short_seq_steps`` > 0, those first steps draw their batches from
    ``short_instances_dir`` (instances built at ``short_seq_length``) and the rest from
    ``instances_dir``, each phase from its own first epoch (the paper's 128 -> 512 schedule).
    ``corpus_dir``, when given, is only digested into metrics.json (what the instances came from).
    ``tensorboard_dir``: where the log's scalars also go as TensorBoard events (pretrain.tensorboard).

    Under ``torchrun`` every rank trains on its share of each step's batch (DDP) and only rank 0
    writes; the others return None. The logged loss is rank 0's share of the batch.
    """
    spec = spec if isinstance(spec, AblationSpec) else AblationSpec.from_dict(spec)
    dist = Distributed.from_env()
    configure_threads(dist.threads(threads))
    dist.init(dist.device(device))
    step_log = None
    try:
        run = prepare(spec, instances_dir, tokenizer_dir, state_root, device, short_instances_dir, dist)
        start, tokens = _load_state(run.state_dir / "state.pt", run.engine)
        if dist.is_main:
            step_log = StepLog(run.state_dir / "log.csv", ["loss", "lm_loss", "nsp_loss", "lr", "tokens",
                                                           "tokens_per_second", "grad_norm"], resume_step=start,
                               tensorboard_dir=tensorboard_dir if run.train.tensorboard else None)
        log.info("pretraining %s (%s, %s): %d parameters, %d instances, steps %d..%d on %s (rank %d of %d)",
                 spec.name, run.objective.name, spec.packing,
                 sum(p.numel() for p in run.engine.module.parameters()), len(run.batches), start,
                 run.train.steps, run.engine.device, dist.rank, dist.world_size)
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
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    pretrain(**kwargs)


if __name__ == "__main__":
    main()
