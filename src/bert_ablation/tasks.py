"""Fine-tuning tasks: a registry of what each task is, and loaders that bring any source
(the built-in world, the hub) into the *hub's* record schema, so one code path serves all.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from .storage import atomic_dir
from .world import CONLL_LABELS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: str  # "classification" (one label per input), "span" (extractive QA) or "tagging" (one label per word)
    text_fields: tuple[str, ...]  # one or two fields, fed as segment A (and B); tagging: the word list
    labels: tuple[str, ...]  # label names in the hub's index order; empty for span tasks
    eval_splits: tuple[str, ...]  # evaluated splits; the first (dev) selects grid points, never a test split
    metrics: tuple[str, ...]  # on a 0-100 scale; the first is the one grid selection maximises
    hub: dict = field(default_factory=dict)  # default datasets.load_dataset arguments


TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec("mnli", "classification", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"),
                 ("validation_matched", "validation_mismatched"), ("accuracy",), {"path": "nyu-mll/glue", "name": "mnli"}),
        TaskSpec("qnli", "classification", ("question", "sentence"), ("entailment", "not_entailment"),
                 ("validation",), ("accuracy",), {"path": "nyu-mll/glue", "name": "qnli"}),
        TaskSpec("mrpc", "classification", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"),
                 ("validation",), ("accuracy", "f1"), {"path": "nyu-mll/glue", "name": "mrpc"}),
        TaskSpec("sst2", "classification", ("sentence",), ("negative", "positive"),
                 ("validation",), ("accuracy",), {"path": "nyu-mll/glue", "name": "sst2"}),
        TaskSpec("squad", "span", ("question", "context"), (), ("validation",), ("f1", "exact_match"),
                 {"path": "rajpurkar/squad"}),
        TaskSpec("conll2003", "tagging", ("tokens",), CONLL_LABELS, ("validation", "test"),
                 ("f1", "precision", "recall", "accuracy"), {"path": "eriktks/conll2003"}),
    )
}


class TaskDataError(ValueError):
    """Task records that do not fit the task's schema, naming the split, row and field."""


def validate_records(spec: TaskSpec, split: str, records) -> None:
    """Check every record before any training: fields present, labels in range, answers in context."""
    for i, row in enumerate(records):
        where = f"{spec.name}/{split} row {i}"
        for name in spec.text_fields:
            value = row.get(name)
            words = value if spec.kind == "tagging" and isinstance(value, list) else [value]
            if not value or not all(isinstance(w, str) and w.strip() for w in words):
                raise TaskDataError(f"{where}: field '{name}' is missing or empty (or has an empty word).")
        if spec.kind == "tagging":
            _validate_tags(spec, where, row)
        elif spec.kind == "classification":
            label = row.get("label")
            if not isinstance(label, int) or not 0 <= label < len(spec.labels):
                raise TaskDataError(f"{where}: label {label!r} is not one of 0..{len(spec.labels) - 1} "
                                    f"({', '.join(spec.labels)}).")
        else:
            answers = row.get("answers") or {}
            if not answers.get("text"):
                raise TaskDataError(f"{where}: no answers.")
            for text, start in zip(answers["text"], answers["answer_start"]):
                if row["context"][start: start + len(text)] != text:
                    raise TaskDataError(f"{where}: answer '{text}' is not at answer_start={start} of the context.")


def _validate_tags(spec: TaskSpec, where: str, row) -> None:
    tokens, tags = row.get("tokens"), row.get("ner_tags")
    if not isinstance(tags, list) or len(tags) != len(tokens):
        raise TaskDataError(f"{where}: 'ner_tags' must be a list with one tag per token ({len(tokens)} tokens).")
    for k, tag in enumerate(tags):
        if not isinstance(tag, int) or not 0 <= tag < len(spec.labels):
            raise TaskDataError(f"{where}: ner_tags[{k}] = {tag!r} is not one of 0..{len(spec.labels) - 1} "
                                f"({', '.join(spec.labels)}).")


def world_splits(name: str, settings: dict, world: dict) -> dict[str, list[dict]]:
    from .world import World

    # world.scale grows the task sizes with the world's entities and corpus.
    scale = world["scale"]
    return World(seed=world["seed"], scale=scale).task(name, max(1, round(settings["n_train"] * scale)),
                                                       max(1, round(settings["n_dev"] * scale)), seed=world["seed"])


def hub_splits(name: str, settings: dict, world: dict) -> dict[str, list[dict]]:
    import datasets

    args = settings.get("hub") or TASKS[name].hub
    loaded = datasets.load_dataset(**args)
    return {split: loaded[split] for split in ("train", *TASKS[name].eval_splits)}


def local_file_splits(name: str, settings: dict, world: dict) -> dict[str, list[dict]]:
    from .task_files import local_splits

    return local_splits(name, settings)


SOURCES = {"world": world_splits, "hub": hub_splits, "local": local_file_splits}


def build_task(name: str, settings: dict, world: dict, out_dir: str) -> dict:
    """Load a task from its configured source, validate it and save it as a DatasetDict."""
    import datasets

    spec = TASKS[name]
    splits = SOURCES[settings["source"]](name, settings, world)
    summary = {}
    for split in ("train", *spec.eval_splits):
        if split not in splits:
            raise TaskDataError(f"{name}: source '{settings['source']}' has no split '{split}'.")
        records = splits[split]
        validate_records(spec, split, records)
        summary[split] = {"rows": len(records)}
        if spec.kind == "classification":
            summary[split]["labels"] = dict(sorted(Counter(spec.labels[r["label"]] for r in records).items()))
    out = datasets.DatasetDict({
        split: (splits[split] if isinstance(splits[split], datasets.Dataset) else datasets.Dataset.from_list(splits[split]))
        for split in ("train", *spec.eval_splits)
    })
    with atomic_dir(out_dir) as tmp:
        out.save_to_disk(str(tmp))
    log.info("task %s from %s: %s", name, settings["source"], summary)
    return summary
