"""The fine-tuning loop: one checkpoint x task x head x grid point, all restarts in one process.

Restarts share the checkpoint and differ in exactly two seeds, derived separately from
(finetune.seed, restart): one for the task head's initialisation (and dropout), one for the
data order. Each restart writes its own metrics.json. Running the restarts in one process
pays the ~5 s import of torch + transformers once instead of once per restart.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..data.features import build_feature_cache, pad_batch
from ..data.tokenizer import load_tokenizer
from ..evaluation.health import NOT_LEARNT
from ..facts.tasks import TASKS, with_labels
from ..models.heads import HEADS
from ..models.modeling import FinetuneModel, load_encoder
from ..plan import FinetuneSettings
from ..runtime import peak_memory
from ..settings import TaskSettings
from ..storage import atomic_file, derive_seed, read_json, stable_hash, tree_digest, write_json
from .batching import epoch_batches
from .engine import Engine, configure_threads, seed_everything
from .tasks import TASK_KINDS

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint that does not fit this config or is internally inconsistent."""


def restart_seeds(base_seed: int, restart: int) -> dict[str, int]:
    return {"init_seed": derive_seed(base_seed, restart, "init"), "data_seed": derive_seed(base_seed, restart, "data")}


def featurize(spec, split_records: dict, tokenizer, task_settings: TaskSettings, train: bool) -> dict:
    return TASK_KINDS[spec.kind].featurize(spec, split_records, tokenizer, task_settings, train)


@torch.no_grad()
def predict(engine: Engine, spec, features: dict, batch_size: int, pad_id: int) -> list[np.ndarray]:
    """The model's logits for every example: (C,) per sequence, (T_i, C) per token for spans and tags."""
    n = len(features["input_ids"])
    # Length-sorted batches waste no compute on padding; order does not change predictions.
    order = np.argsort([len(ids) for ids in features["input_ids"]], kind="stable")
    outputs = [None] * n
    per_token = TASK_KINDS[spec.kind].per_token
    for start in range(0, n, batch_size):
        index = order[start: start + batch_size]
        batch = pad_batch(features, index, pad_id, ())
        logits = engine.evaluate(batch).logits.float().cpu()
        for r, i in enumerate(index):
            outputs[i] = logits[r, : len(features["input_ids"][i])].numpy() if per_token else logits[r].numpy()
    return outputs


def score(spec, records: dict, features: dict, outputs: list[np.ndarray], task_settings: TaskSettings) -> dict:
    """The task's metrics of ``predict``'s outputs (decoding spans and tags first)."""
    return TASK_KINDS[spec.kind].score(spec, records, features, outputs, task_settings)


def evaluate(engine: Engine, spec, records: dict, features: dict, batch_size: int, task_settings: TaskSettings,
             pad_id: int) -> dict:
    return score(spec, records, features, predict(engine, spec, features, batch_size, pad_id), task_settings)


def cache_hidden_states(encoder, head: str, features: dict, pad_id: int, batch_size: int, device: str,
                        folder: str | None = None) -> None:
    """Run the frozen encoder once over every example and keep the layers ``head`` reads, at the
    positions it reads, in fp16 on disk under ``folder`` (features["hidden_states"]: a
    data.features.FeatureCache), so that every epoch and restart of a feature-based head trains
    its BiLSTM on stored features, as ELMo-style taggers do, in bounded host memory."""
    features["hidden_states"] = build_feature_cache(encoder, HEADS[head].cached_layers(encoder.config), features,
                                                    pad_id, batch_size, device, folder)


class Interrupted(Exception):
    """Raised by ``stop_after_epochs`` (tests): the run stops as a kill would, after a saved epoch."""


def train_restart(encoder, spec, head: str, train_features: dict, settings: FinetuneSettings, seeds: dict,
                  pad_id: int, device: str, desc: str, after_epoch=None, state_file: Path | None = None,
                  budget: list[int] | None = None, step_seconds: list | None = None) -> tuple[Engine, list]:
    """Train one restart; ``after_epoch(engine)``, when given, scores the model after each epoch
    (evaluation draws no random numbers, so the training run is the same with or without it).
    Returns the engine and the list of those scores.

    With ``state_file``, the state after each epoch (model, optimizer, schedule, RNGs, the data
    order's generator and the scores so far) is saved there, and a run that finds one resumes
    from it: an interrupted restart continues where it stopped, to the same result. ``budget``
    ([epochs]) raises Interrupted once that many epochs have been trained (tests). ``step_seconds``,
    when given, receives each optimizer step's duration (a rehearsal's measurements)."""
    hp = settings.hp
    seed_everything(seeds["init_seed"])
    model = FinetuneModel(copy.deepcopy(encoder), spec.kind, len(spec.labels), head, settings.dropout)
    n = len(train_features["input_ids"])
    steps_per_epoch = math.ceil(n / hp.batch_size)
    total = steps_per_epoch * hp.epochs
    engine = Engine.from_settings(model, settings, lr=hp.lr, total_steps=total,
                                  warmup_steps=int(settings.warmup_ratio * total), device=device)
    label_keys = TASK_KINDS[spec.kind].label_keys
    data_order = torch.Generator().manual_seed(seeds["data_seed"])
    lengths = [len(ids) for ids in train_features["input_ids"]]
    curve, first_epoch = [], 0
    if state_file is not None and state_file.exists():
        state = torch.load(state_file, map_location="cpu", weights_only=False)
        engine.load_state_dict(state["engine"])
        data_order.set_state(state["data_order"])
        curve, first_epoch = state["curve"], state["epochs_done"]
        log.info("%s: resumed after epoch %d of %d", desc, first_epoch, hp.epochs)
    progress = tqdm(total=total, initial=first_epoch * steps_per_epoch, mininterval=10, desc=desc)
    for epoch in range(first_epoch, hp.epochs):
        for index in epoch_batches(lengths, hp.batch_size, data_order, settings.group_by_length):
            began = time.perf_counter()
            out = engine.step(pad_batch(train_features, index, pad_id, label_keys))
            if step_seconds is not None:  # a rehearsal's measurement: the step done on the device too
                if engine.device.type == "cuda":
                    torch.cuda.synchronize(engine.device)
                step_seconds.append(round(time.perf_counter() - began, 4))
            progress.update()
        # the epoch's last loss, read back once an epoch: a read per step would wait for the GPU every step
        progress.set_postfix(loss=f"{out.loss.item():.3f}", refresh=False)
        if after_epoch is not None:
            curve.append(after_epoch(engine))
        if state_file is not None and epoch + 1 < hp.epochs:
            with atomic_file(state_file, "wb") as handle:
                torch.save({"engine": engine.state_dict(), "data_order": data_order.get_state(), "curve": curve,
                            "epochs_done": epoch + 1}, handle)
        if budget is not None:
            budget[0] -= 1
            if budget[0] <= 0 and epoch + 1 < hp.epochs:
                progress.close()
                raise Interrupted(desc)
    progress.close()
    return engine, curve


def _attempt_state(stem: Path, attempt: int) -> Path:
    return stem.with_name(f"{stem.name}.pt" if attempt == 0 else f"{stem.name}-retry{attempt}.pt")


def chance_scores(spec, eval_features: dict) -> dict | None:
    """Each evaluation split's accuracy (and binary F1, where the task reports it) of the best
    constant classifier, every example given the one label that scores highest there: what a model
    that learnt nothing of a classification task reaches, the level claims' preconditions ask a task
    to rise above. None for other kinds."""
    if spec.kind != "classification":
        return None
    out = {}
    for split, features in eval_features.items():
        labels = np.asarray(features["labels"])
        shares = np.bincount(labels, minlength=len(spec.labels)) / max(len(labels), 1)
        scores = {"accuracy": 100.0 * float(shares.max())}
        if "f1" in spec.metrics and len(shares) > 1:  # always "1" (positive): precision = its share, recall 1
            scores["f1"] = 100.0 * 2 * float(shares[1]) / (float(shares[1]) + 1)
        out[split] = scores
    return out


def _retry_outcome(attempts: list[dict], no_retry: str | None) -> str:
    if len(attempts) == 1:
        if not attempts[0]["collapsed_to"]:
            return "not collapsed"
        return f"collapsed, not retried: {no_retry}" if no_retry else "collapsed, not retried"
    return "still collapsed" if attempts[-1]["collapsed_to"] else "recovered"


def _train_until_not_collapsed(encoder, spec, head: str, train_features: dict, settings: FinetuneSettings, seeds: dict,
                               pad_id: int, device: str, desc: str, dev_scorer, state_stem: Path | None,
                               budget: list[int] | None, no_retry: str | None = None,
                               step_seconds: list | None = None) -> tuple[Engine, list, list[dict]]:
    """Train one restart; while it collapses (predicts one class for every dev example) and
    ``finetune.collapse_retry.max_retries`` allows, train it again from the same seeds at the rate
    divided by ``lr_divisor``: a constant classifier is a failed run, not a score (issue 25), and
    the usual cause is a rate too high for the encoder. Returns the last attempt's engine and dev
    curve, and every attempt's {lr, collapsed_to, dev}. ``no_retry``: why this restart gets no retry
    (its encoder did not learn in pretraining), or None. ``step_seconds`` collects every attempt's steps."""
    retry = settings.collapse_retry
    lr, attempts = settings.hp.lr, []
    max_retries = 0 if no_retry else retry.max_retries
    for attempt in range(max_retries + 1):
        attempt_settings = settings if attempt == 0 else dataclasses.replace(
            settings, hp=dataclasses.replace(settings.hp, lr=lr))
        dev_outputs = []  # the last epoch's dev predictions
        engine, curve = train_restart(encoder, spec, head, train_features, attempt_settings, seeds, pad_id, device,
                                      desc=desc if attempt == 0 else f"{desc} retry {attempt} (lr {lr:g})",
                                      after_epoch=dev_scorer(dev_outputs),
                                      state_file=_attempt_state(state_stem, attempt) if state_stem else None,
                                      budget=budget, step_seconds=step_seconds)
        collapsed = TASK_KINDS[spec.kind].constant_prediction(spec, dev_outputs)
        attempts.append({"lr": lr, "collapsed_to": collapsed, "dev": curve[-1]})
        if collapsed is None:
            break
        again = attempt < max_retries
        log.warning("%s collapsed: it predicts '%s' for every %s example at lr %g (dev %s); a constant classifier "
                    "scores this; %s", desc, collapsed, spec.eval_splits[0], lr, curve[-1],
                    f"retrying at lr {lr / retry.lr_divisor:g} (finetune.collapse_retry)" if again
                    else f"not retried: {no_retry}" if no_retry
                    else "no retry left (finetune.collapse_retry.max_retries): the restart stays collapsed")
        lr = lr / retry.lr_divisor
    return engine, curve, attempts


def finetune(checkpoint_dirs: str | list[str], task_dir: str, task: str, head: str, settings: FinetuneSettings | dict,
             outputs: list[str], threads: int | None = None, device: str | None = None,
             expected_spec_hash: str | list[str | None] | None = None, state_root: str | None = None,
             stop_after_epochs: int | None = None) -> list[dict] | None:
    """``state_root``: where an interrupted job's work survives (outside Snakemake's declared
    outputs, which it deletes before a rerun), keyed by the settings and the inputs' digests: a
    finished restart's metrics are reused, an unfinished one resumes after its last epoch. A job
    that completes removes its state. ``stop_after_epochs`` interrupts the job after that many
    epochs in all, as a kill would (tests).

    Fine-tune every checkpoint of ``checkpoint_dirs`` (one per pretraining seed, seed 0 first) on
    ``task``: the outputs are split evenly, seed s taking restarts s x n .. (s + 1) x n - 1, so one
    process (one ~4 s import of torch and transformers) serves every seed. Restart k's seeds come
    from (finetune.seed, k): distinct across pretraining seeds. ``expected_spec_hash``: per
    checkpoint, the pretraining run the config asks for; another one is refused. Returns every
    restart's metrics, or None if interrupted. ``settings``: typed, or as the job's params give
    them (``FinetuneSettings.params()``)."""
    settings = settings if isinstance(settings, FinetuneSettings) else FinetuneSettings.from_params(settings)
    dirs = [checkpoint_dirs] if isinstance(checkpoint_dirs, str) else list(checkpoint_dirs)
    hashes = expected_spec_hash if isinstance(expected_spec_hash, list) else [expected_spec_hash] * len(dirs)
    if not dirs or len(outputs) % len(dirs) or len(hashes) != len(dirs):
        raise ValueError(f"{len(outputs)} outputs cannot be split over {len(dirs)} checkpoints "
                         f"({len(hashes)} expected spec hashes).")
    for checkpoint_dir, spec_hash in zip(dirs, hashes):  # every checkpoint before any training
        _check_spec_hash(checkpoint_dir, spec_hash)
    per_seed = len(outputs) // len(dirs)
    budget = None if stop_after_epochs is None else [stop_after_epochs]  # shared: "after that many epochs in all"
    results = []
    for index, checkpoint_dir in enumerate(dirs):
        done = _finetune_checkpoint(checkpoint_dir, task_dir, task, head, settings,
                                    outputs[index * per_seed:(index + 1) * per_seed], index * per_seed, threads,
                                    device, state_root, budget)
        if done is None:
            return None
        results += done
    return results


def _check_spec_hash(checkpoint_dir: str, expected_spec_hash: str | None) -> None:
    found = read_json(f"{checkpoint_dir}/ablation.json")["spec_hash"]
    if expected_spec_hash and found != expected_spec_hash:
        raise CheckpointError(f"{checkpoint_dir} was pretrained with another config (spec hash {found}, this "
                              f"config's is {expected_spec_hash}); rebuild it with snakemake --forcerun pretrain, or "
                              f"delete {Path(checkpoint_dir).parent}.")


def _finetune_checkpoint(checkpoint_dir: str, task_dir: str, task: str, head: str, settings: FinetuneSettings,
                         outputs: list[str], first_restart: int, threads: int | None, device: str | None,
                         state_root: str | None, budget: list[int] | None) -> list[dict] | None:
    """Fine-tune ``checkpoint_dir`` on ``task`` once per output path (restart first_restart + i -> outputs[i]).

    ``state_root``: where an interrupted job's work survives (outside Snakemake's declared outputs,
    which it deletes before a rerun), keyed by the settings and the inputs' digests: a finished
    restart's metrics are reused, an unfinished one resumes after its last epoch. A job that
    completes removes its state.
    ``budget``: epochs left before the job stops as a kill would (``stop_after_epochs``, tests)."""
    import datasets

    configure_threads(threads)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    spec = TASKS[task]
    pretrain_spec = read_json(f"{checkpoint_dir}/ablation.json")
    tokenizer = load_tokenizer(checkpoint_dir)
    encoder = load_encoder(checkpoint_dir)
    if encoder.config.vocab_size < len(tokenizer):
        raise CheckpointError(f"{checkpoint_dir}: the model has {encoder.config.vocab_size} embedding rows but its "
                              f"tokenizer {len(tokenizer)} tokens; the checkpoint mixes files of different vocabularies. "
                              f"Rebuild it with snakemake --forcerun pretrain.")
    if HEADS[head].frozen and encoder.config.num_hidden_layers < HEADS[head].min_layers():
        raise CheckpointError(f"{checkpoint_dir}: head '{head}' reads {HEADS[head].min_layers()} layers but this encoder "
                              f"has {encoder.config.num_hidden_layers}; use a deeper model or another feature head.")
    data = datasets.load_from_disk(task_dir)
    spec = with_labels(spec, data["train"])  # ner: the label set saved with the task's data
    records = {split: data[split].to_dict() for split in ("train", *spec.eval_splits)}
    train_features = featurize(spec, records["train"], tokenizer, settings.task, train=True)
    eval_features = {split: featurize(spec, records[split], tokenizer, settings.task, train=False)
                    for split in spec.eval_splits}
    # The feature caches live on disk under the job's own state folder: one job per folder, so
    # what is there comes from an interrupted run of this job and is cleared before and after.
    cache_dir = Path(state_root) / "tmp" if state_root else None
    if HEADS[head].frozen and settings.cache_features:
        if cache_dir is not None:
            shutil.rmtree(cache_dir, ignore_errors=True)
        for features in (train_features, *eval_features.values()):
            cache_hidden_states(encoder, head, features, tokenizer.pad_token_id, settings.eval_batch_size, device,
                                None if cache_dir is None else str(cache_dir))

    dev_split = spec.eval_splits[0]
    chance = chance_scores(spec, eval_features)
    # The checkpoint and the task data by content: the task's source, path and sizes are what
    # built these files, and two runs on the same bytes are comparable whatever the config said.
    inputs = {"checkpoint": tree_digest(checkpoint_dir), "task_data": tree_digest(task_dir)}

    def scorer(split, keep=None):
        def run(engine):
            outputs = predict(engine, spec, eval_features[split], settings.eval_batch_size, tokenizer.pad_token_id)
            if keep is not None:
                keep[:] = outputs
            return score(spec, records[split], eval_features[split], outputs, settings.task)
        return run

    # A final checkpoint records its pretraining health (pretrain.py): an encoder that did not learn
    # is not retried at a lower rate, which cannot fix it (and the table marks its row already).
    health = pretrain_spec.get("health")
    no_retry = f"its pretraining run is '{health}' (not learnt)" if health in NOT_LEARNT else None
    params = settings.params()  # the JSON document the job received: what its state and results are keyed by
    finetune_hash = stable_hash(params)
    state_dir = None
    if state_root is not None:
        state_dir = Path(state_root) / stable_hash([params, inputs, task, head])
        state_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for restart, path in enumerate(outputs, start=first_restart):
        seeds = restart_seeds(settings.seed, restart)
        finished = state_dir / f"restart{restart}.json" if state_dir else None
        if finished is not None and finished.exists():  # done before the job was interrupted
            metrics = read_json(finished)
            write_json(path, metrics)
            log.info("%s restart %d: finished in an earlier run, reused", task, restart)
            results.append(metrics)
            continue
        began = time.perf_counter()
        step_seconds = []
        try:
            engine, curve, attempts = _train_until_not_collapsed(
                encoder, spec, head, train_features, settings, seeds, tokenizer.pad_token_id, device,
                f"{task} {head} restart {restart}", lambda keep: scorer(dev_split, keep=keep),
                state_dir / f"restart{restart}" if state_dir else None, budget, no_retry,
                step_seconds)
        except Interrupted:
            return None
        # The last epoch's dev score is the run's; the other splits are scored once, at the end.
        scores = {dev_split: curve[-1], **{split: scorer(split)(engine) for split in spec.eval_splits[1:]}}
        collapsed = attempts[-1]["collapsed_to"]
        metrics = {
            "task": task, "head": head, "restart": restart, **seeds,
            "checkpoint": checkpoint_dir, "ablation": pretrain_spec["name"], "pretrain_step": pretrain_spec["step"],
            "pretrain_spec_hash": pretrain_spec["spec_hash"],
            "finetune_hash": finetune_hash, "hyperparameters": dataclasses.asdict(settings.hp),
            "train_examples": len(records["train"][spec.text_fields[0]]), "train_features": len(train_features["input_ids"]),
            "dev_split": dev_split, "dev": scores[dev_split], "splits": scores, "chance": chance,
            "dev_curve": [{"epoch": epoch, **values} for epoch, values in enumerate(curve, start=1)],
            "collapsed_to": collapsed,
            # Every attempt of this restart; the reported scores are the last one's.
            "collapse_retry": {"original_lr": settings.hp.lr, "lr": attempts[-1]["lr"],
                               "retries": len(attempts) - 1, "attempts": attempts,
                               "outcome": _retry_outcome(attempts, no_retry)},
            "optimizer": engine.optimizer_settings(),
            "inputs": inputs,
            "seconds": round(time.perf_counter() - began, 2), "device": device, "precision": engine.precision,
            # what a rehearsal extrapolates from (bert_ablation.rehearsal); the peak is the job's so far
            "step_seconds": step_seconds, **peak_memory(engine.device),
        }
        if finished is not None:
            write_json(finished, metrics)
            for attempt in range(len(attempts)):
                _attempt_state(state_dir / f"restart{restart}", attempt).unlink(missing_ok=True)
        write_json(path, metrics)
        log.info("%s restart %d: %s", task, restart, scores)
        results.append(metrics)
    if state_dir is not None:
        # The state only bridges an interruption: a finished job's next run (new code, say) starts afresh.
        shutil.rmtree(state_dir, ignore_errors=True)
    if cache_dir is not None:
        shutil.rmtree(cache_dir, ignore_errors=True)
    return results
