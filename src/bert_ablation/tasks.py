"""Fine-tuning tasks: a registry of what each task is, and loaders that bring any source
(the built-in world, the hub) into the *hub's* record schema, so one code path serves all.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass, field

from .storage import atomic_dir
from .world import CONLL_LABELS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    # "classification" (one label per input), "regression" (one score per input), "span" (extractive QA)
    # or "tagging" (one label per word)
    kind: str
    text_fields: tuple[str, ...]  # one or two fields, fed as segment A (and B); tagging: the word list
    # Label names in the hub's index order; empty for span and regression tasks, and for a tagging
    # task whose labels are its data's (ner: see with_labels)
    labels: tuple[str, ...]
    eval_splits: tuple[str, ...]  # evaluated splits; the first (dev) selects grid points, never a test split
    # On a 0-100 scale; the first is the paper's headline metric. Tables select each cell's grid
    # point on the cell's own metric.
    metrics: tuple[str, ...]
    hub: dict = field(default_factory=dict)  # default datasets.load_dataset arguments
    score_range: tuple[float, float] | None = None  # regression: the range of a valid label


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
        # The rest of GLUE, headed by the metric the paper's Table 1 reports (Matthews correlation
        # for CoLA, Spearman for STS-B, F1 for QQP), then GLUE's other one (STS-B, QQP).
        TaskSpec("cola", "classification", ("sentence",), ("unacceptable", "acceptable"),
                 ("validation",), ("matthews_correlation",), {"path": "nyu-mll/glue", "name": "cola"}),
        TaskSpec("stsb", "regression", ("sentence1", "sentence2"), (), ("validation",), ("spearman", "pearson"),
                 {"path": "nyu-mll/glue", "name": "stsb"}, score_range=(0.0, 5.0)),
        TaskSpec("qqp", "classification", ("question1", "question2"), ("not_duplicate", "duplicate"),
                 ("validation",), ("f1", "accuracy"), {"path": "nyu-mll/glue", "name": "qqp"}),
        TaskSpec("rte", "classification", ("sentence1", "sentence2"), ("entailment", "not_entailment"),
                 ("validation",), ("accuracy",), {"path": "nyu-mll/glue", "name": "rte"}),
        TaskSpec("squad", "span", ("question", "context"), (), ("validation",), ("f1", "exact_match"),
                 {"path": "rajpurkar/squad"}),
        TaskSpec("conll2003", "tagging", ("tokens",), CONLL_LABELS, ("validation", "test"),
                 ("f1", "precision", "recall", "accuracy"), {"path": "eriktks/conll2003"}),
        # Any other BIO tagging corpus (WNUT-17, OntoNotes): the label set is its training
        # split's, saved with the task's data; no standard dataset, so hub needs tasks.ner.hub.
        TaskSpec("ner", "tagging", ("tokens",), (), ("validation", "test"), ("f1", "precision", "recall", "accuracy")),
    )
}


class TaskDataError(ValueError):
    """Task records that do not fit the task's schema, naming the split, row and field."""


def with_labels(spec: TaskSpec, train) -> TaskSpec:
    """``spec``, or for a tagging task without labels of its own (ner) ``spec`` with the labels
    that its training split's ``ner_tags`` feature names (a datasets ClassLabel)."""
    if spec.labels or spec.kind != "tagging":
        return spec
    names = _tag_names(train)
    if not names:
        raise TaskDataError(f"{spec.name}/train: 'ner_tags' carries no label names (a datasets ClassLabel "
                            f"sequence, as the hub's NER datasets have); give column files (source: local) instead.")
    bad = [name for name in names if name != "O" and not (name[:2] in ("B-", "I-") and name[2:])]
    if bad:
        raise TaskDataError(f"{spec.name}/train: labels {bad} are not O, B-<type> or I-<type>; entity-level "
                            f"scoring needs BIO (or IOB1) tags.")
    return dataclasses.replace(spec, labels=names)


def _tag_names(split) -> tuple[str, ...]:
    """The label names of a Dataset's ner_tags ClassLabel sequence; () without them (plain records)."""
    feature = getattr(split, "features", {}).get("ner_tags")
    return tuple(getattr(getattr(feature, "feature", None), "names", None) or ())


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
        elif spec.kind == "regression":
            label, (low, high) = row.get("label"), spec.score_range
            # NaN and infinities fail the range test too.
            if isinstance(label, bool) or not isinstance(label, (int, float)) or not low <= label <= high:
                raise TaskDataError(f"{where}: label {label!r} is not a score in [{low:g}, {high:g}].")
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


def summarize(spec: TaskSpec, records, dropped: dict[str, list[int]]) -> dict:
    """What a split holds: rows, the label counts (regression: the score range) and the rows the
    loader dropped, by reason, with the first lines they were on."""
    summary = {"rows": len(records)}
    if spec.kind == "classification":
        summary["labels"] = dict(sorted(Counter(spec.labels[r["label"]] for r in records).items()))
    elif spec.kind == "regression" and len(records):
        scores = [r["label"] for r in records]
        summary["scores"] = {"min": min(scores), "max": max(scores), "mean": round(sum(scores) / len(scores), 4)}
    if dropped:
        summary["dropped"] = {reason: {"rows": len(lines), "lines": lines[:20]} for reason, lines in dropped.items()}
    return summary


# A source returns ({split: records}, {split: {reason: [line, ...]}}): the records in the hub's
# schema and the rows it dropped (only local files drop rows, e.g. QQP's broken lines).
def world_splits(name: str, settings: dict, world: dict) -> tuple[dict, dict]:
    from .world import World

    # world.scale grows the task sizes with the world's entities and corpus.
    scale = world["scale"]
    generated = World(seed=world["seed"], scale=scale, remove=world.get("remove", ()))  # remove: a control world
    splits = generated.task(name, max(1, round(settings["n_train"] * scale)), max(1, round(settings["n_dev"] * scale)),
                            seed=world["seed"])
    return splits, {}


def hub_splits(name: str, settings: dict, world: dict) -> tuple[dict, dict]:
    import datasets

    args = settings.get("hub") or TASKS[name].hub
    if not args:
        raise TaskDataError(f"{name}: source 'hub' needs tasks.{name}.hub, the datasets.load_dataset arguments "
                            f"(e.g. {{path: my-org/wnut17}}); this task has no standard dataset.")
    loaded = datasets.load_dataset(**args)
    splits = {split: loaded[split] for split in ("train", *TASKS[name].eval_splits)}
    if TASKS[name].kind == "tagging":
        splits = {split: documents_from_docstart(f"{name}/{split}", rows) for split, rows in splits.items()}
    return splits, {}


def documents_from_docstart(where: str, rows):
    """A tagging split with document ids: those it has, or ones recovered from its ``-DOCSTART-``
    rows (which are then dropped: they are not sentences), or, with neither, the split as it is
    (the NER features then warn that document context is off)."""
    from .conll import DOCSTART

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
    from .task_files import local_splits

    return local_splits(name, settings)


SOURCES = {"world": world_splits, "hub": hub_splits, "local": local_file_splits}


def build_task(name: str, settings: dict, world: dict, out_dir: str) -> dict:
    """Load a task from its configured source, validate it and save it as a DatasetDict."""
    import datasets

    spec = TASKS[name]
    splits, dropped = SOURCES[settings["source"]](name, settings, world)
    summary = {}
    for split in ("train", *spec.eval_splits):
        if split not in splits:
            raise TaskDataError(f"{name}: source '{settings['source']}' has no split '{split}'.")
    if not spec.labels and spec.kind == "tagging":
        spec = with_labels(spec, splits["train"])
        for split in spec.eval_splits:  # a hub or saved dataset's splits may disagree
            names = _tag_names(splits[split])
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
