"""Task sources: bring a task from the built-in world, the hub or local files into the *hub's*
record schema, check it against the registry (``tasks``) and save it, so one code path serves all.
"""

from __future__ import annotations

import logging

from ..facts.tasks import TASKS, TaskDataError, summarize, tag_names, validate_records, with_labels
from ..hub import dataset_args, load_hub_dataset
from ..storage import atomic_dir
from .conll import DOCSTART
from .task_files import local_splits
from .world import World

log = logging.getLogger(__name__)


# A source returns ({split: records}, {split: {reason: [line, ...]}}): the records in the hub's
# schema and the rows it dropped (only local files drop rows, e.g. QQP's broken lines).


def world_splits(name: str, settings: dict, world: dict) -> tuple[dict, dict]:
    # world.scale grows the task sizes with the world's entities and corpus.
    scale = world["scale"]
    generated = World(seed=world["seed"], scale=scale, remove=world.get("remove", ()))  # remove: a control world
    splits = generated.task(name, max(1, round(settings["n_train"] * scale)), max(1, round(settings["n_dev"] * scale)),
                            seed=world["seed"])
    return splits, {}


def hub_splits(name: str, settings: dict, world: dict) -> tuple[dict, dict]:

    args = settings.get("hub") or TASKS[name].hub
    if not args:
        raise TaskDataError(f"{name}: source 'hub' needs tasks.{name}.hub, the datasets.load_dataset arguments "
                            f"(e.g. {{path: my-org/wnut17}}); this task has no standard dataset.")
    args = dataset_args(args, settings.get("hub_mirror"), f"tasks.{name}.hub")
    loaded = load_hub_dataset(args, f"tasks.{name}.hub")
    missing = [split for split in ("train", *TASKS[name].eval_splits) if split not in loaded]
    if missing:
        raise TaskDataError(f"tasks.{name}.hub: {args['path']} has no split {', '.join(missing)} (its splits: "
                            f"{', '.join(loaded)}); give data_files naming them, e.g. {{train: ..., "
                            f"{missing[-1]}: ...}}.")
    splits = {split: loaded[split] for split in ("train", *TASKS[name].eval_splits)}
    if TASKS[name].kind == "tagging":
        splits = {split: documents_from_docstart(f"{name}/{split}", rows) for split, rows in splits.items()}
    return splits, {}


def documents_from_docstart(where: str, rows):
    """A tagging split with document ids: those it has, or ones recovered from its ``-DOCSTART-``
    rows (which are then dropped: they are not sentences), or, with neither, the split as it is
    (the NER features then warn that document context is off)."""

    if "document" in rows.column_names:
        return rows
    starts = [i for i, tokens in enumerate(rows["tokens"]) if tokens and tokens[0] == DOCSTART]
    if not starts:
        return rows
    boundary = set(starts)
    document, ids, keep = -1 if 0 in boundary else 0, [], []
    for i in range(len(rows)):
        if i in boundary:
            document += 1
        else:
            keep.append(i)
            ids.append(max(document, 0))
    log.info("%s: %d documents recovered from %d -DOCSTART- rows (dropped); document context is on",
             where, len(set(ids)), len(starts))
    return rows.select(keep).add_column("document", ids)


def local_file_splits(name: str, settings: dict, world: dict) -> tuple[dict, dict]:
    return local_splits(name, settings)


SOURCES = {"world": world_splits, "hub": hub_splits, "local": local_file_splits}


def _first(rows, limit: int | None):
    """The first ``limit`` records of a split (tasks.<task>.max_train_examples / max_eval_examples:
    a rehearsal's few examples from any source), a hub Dataset or a list alike."""
    if limit is None or len(rows) <= limit:
        return rows
    return rows.select(range(limit)) if hasattr(rows, "select") else rows[:limit]


def build_task(name: str, settings: dict, world: dict, out_dir: str) -> dict:
    """Load a task from its configured source, validate it and save it as a DatasetDict."""
    import datasets

    spec = TASKS[name]
    splits, dropped = SOURCES[settings["source"]](name, settings, world)
    summary = {}
    for split in ("train", *spec.eval_splits):
        if split not in splits:
            raise TaskDataError(f"{name}: source '{settings['source']}' has no split '{split}'.")
    splits = {split: _first(rows, settings.get("max_train_examples" if split == "train" else "max_eval_examples"))
              for split, rows in splits.items()}
    if not spec.labels and spec.kind == "tagging":
        spec = with_labels(spec, splits["train"])
        for split in spec.eval_splits:  # a hub or saved dataset's splits may disagree
            names = tag_names(splits[split])
            if names != spec.labels:
                raise TaskDataError(f"{name}/{split}: its ner_tags labels ({', '.join(names) or 'none'}) differ "
                                    f"from the train split's ({', '.join(spec.labels)}).")
        log.info("task %s: %d labels, from its train split: %s", name, len(spec.labels), ", ".join(spec.labels))
    for split in ("train", *spec.eval_splits):
        validate_records(spec, split, splits[split])
        summary[split] = summarize(spec, splits[split], dropped.get(split, {}))
    out = datasets.DatasetDict({
        split: (splits[split] if isinstance(splits[split], datasets.Dataset) else datasets.Dataset.from_list(splits[split]))
        for split in ("train", *spec.eval_splits)
    })
    with atomic_dir(out_dir) as tmp:
        out.save_to_disk(str(tmp))
    log.info("task %s from %s: %s", name, settings["source"], summary)
    for split, reasons in dropped.items():  # the lines are in the summary above
        for reason, lines in reasons.items():
            log.warning("task %s/%s: dropped %d rows: %s", name, split, len(lines), reason)
    return summary
