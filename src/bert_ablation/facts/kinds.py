"""Task kinds as facts: what classification, regression, span (extractive QA) and tagging are,
one object a kind, as ``OBJECTIVES`` and ``HEAD_KINDS`` are for their axes.

A kind here owns its label keys, the task layer's width, which label values a record may carry
and what a split's summary counts. Its behaviour lives in the layer that does the work:
featurising in ``data.features``, the loss in ``models.modeling`` (the fine-tuning model computes
its own), decoding and scoring in ``evaluation.scoring``. ``tasks.TaskSpec.kind`` names one.
"""

from __future__ import annotations

from collections import Counter


class TaskDataError(ValueError):
    """Task records that do not fit the task's schema, naming the split, row and field."""


class TaskKind:
    name = ""
    label_keys: tuple[str, ...] = ("labels",)  # the batch keys a training step needs
    per_token = False  # logits per token (spans, tags) or one row per sequence
    word_lists = False  # the text field holds a list of words (tagging) rather than a string

    def output_width(self, num_labels: int) -> int:
        return num_labels

    def check_label(self, spec, where: str, row: dict) -> None:
        raise NotImplementedError

    def summary(self, spec, records) -> dict:
        return {}


class Classification(TaskKind):
    """One label per sequence, from the head's summary vector."""

    name = "classification"

    def check_label(self, spec, where, row):
        label = row.get("label")
        if not isinstance(label, int) or not 0 <= label < len(spec.labels):
            raise TaskDataError(f"{where}: label {label!r} is not one of 0..{len(spec.labels) - 1} "
                                f"({', '.join(spec.labels)}).")

    def summary(self, spec, records):
        return {"labels": dict(sorted(Counter(spec.labels[r["label"]] for r in records).items()))}


class Regression(TaskKind):
    """One score per sequence from the summary vector: a single output trained with mean squared
    error (HF's problem_type="regression")."""

    name = "regression"

    def output_width(self, num_labels):
        return 1

    def check_label(self, spec, where, row):
        label, (low, high) = row.get("label"), spec.score_range
        # NaN and infinities fail the range test too.
        if isinstance(label, bool) or not isinstance(label, (int, float)) or not low <= label <= high:
            raise TaskDataError(f"{where}: label {label!r} is not a score in [{low:g}, {high:g}].")

    def summary(self, spec, records):
        if not len(records):
            return {}
        scores = [r["label"] for r in records]
        return {"scores": {"min": min(scores), "max": max(scores), "mean": round(sum(scores) / len(scores), 4)}}


class Span(TaskKind):
    """Start and end logits per token (SQuAD)."""

    name = "span"
    label_keys = ("start_positions", "end_positions")
    per_token = True

    def output_width(self, num_labels):
        return 2

    def check_label(self, spec, where, row):
        answers = row.get("answers") or {}
        if not answers.get("text"):
            raise TaskDataError(f"{where}: no answers.")
        for text, start in zip(answers["text"], answers["answer_start"]):
            if row["context"][start: start + len(text)] != text:
                raise TaskDataError(f"{where}: answer '{text}' is not at answer_start={start} of the context.")


class Tagging(TaskKind):
    """One label per word; only labelled tokens (first sub-tokens) count."""

    name = "tagging"
    per_token = True
    word_lists = True

    def check_label(self, spec, where, row):
        tokens, tags = row.get("tokens"), row.get("ner_tags")
        if not isinstance(tags, list) or len(tags) != len(tokens):
            raise TaskDataError(f"{where}: 'ner_tags' must be a list with one tag per token ({len(tokens)} tokens).")
        for k, tag in enumerate(tags):
            if not isinstance(tag, int) or not 0 <= tag < len(spec.labels):
                raise TaskDataError(f"{where}: ner_tags[{k}] = {tag!r} is not one of 0..{len(spec.labels) - 1} "
                                    f"({', '.join(spec.labels)}).")


KINDS: dict[str, TaskKind] = {kind.name: kind for kind in (Classification(), Regression(), Span(), Tagging())}
