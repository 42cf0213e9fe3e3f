"""Fine-tuning tasks: the registry of what each task is (kind, fields, labels, splits, metrics,
hub dataset) and the checks every source's records pass. The one place these facts live: the
sources (``data.task_sources``: the built-in world, the hub, local files) read them from here.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

from .kinds import KINDS, TaskDataError

log = logging.getLogger(__name__)

# CoNLL-2003's tags in the hub's index order (BIO over PER, ORG, LOC, MISC).
CONLL_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")


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
                 ("f1", "precision", "recall", "accuracy"), {"path": "lhoestq/conll2003"}),
        # Any other BIO tagging corpus (WNUT-17, OntoNotes): the label set is its training
        # split's, saved with the task's data; no standard dataset, so hub needs tasks.ner.hub.
        TaskSpec("ner", "tagging", ("tokens",), (), ("validation", "test"), ("f1", "precision", "recall", "accuracy")),
    )
}

# The tasks the built-in world (data.world) generates, in its order; config validation refuses
# source: world for any other.
WORLD_TASKS = ("mnli", "qnli", "mrpc", "sst2", "squad", "conll2003")


def with_labels(spec: TaskSpec, train) -> TaskSpec:
    """``spec``, or for a tagging task without labels of its own (ner) ``spec`` with the labels
    that its training split's ``ner_tags`` feature names (a datasets ClassLabel)."""
    if spec.labels or spec.kind != "tagging":
        return spec
    names = tag_names(train)
    if not names:
        raise TaskDataError(f"{spec.name}/train: 'ner_tags' carries no label names (a datasets ClassLabel "
                            f"sequence, as the hub's NER datasets have); give column files (source: local) instead.")
    bad = [name for name in names if name != "O" and not (name[:2] in ("B-", "I-") and name[2:])]
    if bad:
        raise TaskDataError(f"{spec.name}/train: labels {bad} are not O, B-<type> or I-<type>; entity-level "
                            f"scoring needs BIO (or IOB1) tags.")
    return dataclasses.replace(spec, labels=names)


def tag_names(split) -> tuple[str, ...]:
    """The label names of a Dataset's ner_tags ClassLabel sequence; () without them (plain records)."""
    feature = getattr(split, "features", {}).get("ner_tags")
    return tuple(getattr(getattr(feature, "feature", None), "names", None) or ())


def validate_records(spec: TaskSpec, split: str, records) -> None:
    """Check every record before any training: fields present, labels in range, answers in context."""
    kind = KINDS[spec.kind]
    for i, row in enumerate(records):
        where = f"{spec.name}/{split} row {i}"
        for name in spec.text_fields:
            value = row.get(name)
            words = value if kind.word_lists and isinstance(value, list) else [value]
            if not value or not all(isinstance(w, str) and w.strip() for w in words):
                raise TaskDataError(f"{where}: field '{name}' is missing or empty (or has an empty word).")
        kind.check_label(spec, where, row)


def summarize(spec: TaskSpec, records, dropped: dict[str, list[int]]) -> dict:
    """What a split holds: rows, the label counts (regression: the score range) and the rows the
    loader dropped, by reason, with the first lines they were on."""
    summary = {"rows": len(records), **KINDS[spec.kind].summary(spec, records)}
    if dropped:
        summary["dropped"] = {reason: {"rows": len(lines), "lines": lines[:20]} for reason, lines in dropped.items()}
    return summary
