"""A task's outputs -> its predictions -> its metrics, by task kind (``score``): the arg-max
class, the regression value, the best SQuAD span over a question's windows (``best_spans``), the
tag of each word's first sub-token. And the one collapse a kind can show: fine-tuning that
predicts a single class for every example (``constant_prediction``).

Outputs are ``finetune.predict``'s logits: (C,) per sequence, (T_i, 2 or C) per token.
"""

from __future__ import annotations

import numpy as np

from ..settings import TaskSettings
from .metrics import classification_scores, ner_scores, regression_scores, squad_scores


def _classification(spec, records: dict, features: dict, outputs: list, settings: TaskSettings) -> dict:
    return classification_scores([int(o.argmax()) for o in outputs], features["labels"], spec.metrics)


def _regression(spec, records: dict, features: dict, outputs: list, settings: TaskSettings) -> dict:
    return regression_scores([float(o[0]) for o in outputs], features["labels"])


def _span(spec, records: dict, features: dict, outputs: list, settings: TaskSettings) -> dict:
    predictions = best_spans(records, features, [o[:, 0] for o in outputs], [o[:, 1] for o in outputs],
                             settings.n_best, settings.max_answer_length)
    references = {qid: a["text"] for qid, a in zip(records["id"], records["answers"])}
    return squad_scores(predictions, references)


def _tagging(spec, records: dict, features: dict, outputs: list, settings: TaskSettings) -> dict:
    predictions = [[spec.labels[int(out[p].argmax())] if p is not None else "O" for p in positions]
                   for out, positions in zip(outputs, features["word_positions"])]
    references = [[spec.labels[t] for t in tags] for tags in records["ner_tags"]]
    return ner_scores(predictions, references)


# How each task kind (facts.kinds.KINDS) decodes and scores its outputs.
SCORERS = {"classification": _classification, "regression": _regression, "span": _span, "tagging": _tagging}


def score(spec, records: dict, features: dict, outputs: list, settings: TaskSettings) -> dict:
    """The task's metrics of its outputs on one split (decoding spans and tags first)."""
    return SCORERS[spec.kind](spec, records, features, outputs, settings)


def _single_class(spec, outputs: list) -> str | None:
    # A collapsed run (fine-tuning that diverged to one class) scores that class's share: chance.
    if not outputs:
        return None
    predicted = {int(o.argmax()) for o in outputs}
    return spec.labels[predicted.pop()] if len(predicted) == 1 else None


# The kinds that can collapse to one predicted label: a score or a span has no class to collapse to.
COLLAPSES = {"classification": _single_class}


def constant_prediction(spec, outputs: list) -> str | None:
    """The label predicted for every example, where the task's kind can collapse to one; else None."""
    collapse = COLLAPSES.get(spec.kind)
    return collapse(spec, outputs) if collapse else None


def best_spans(records, features: dict, start_logits: list[np.ndarray], end_logits: list[np.ndarray],
               n_best: int, max_answer_length: int) -> dict[str, str]:
    """The highest-scoring valid span of each question over all of its windows: id -> text.

    Where span_features marked max-context windows (``features["max_context"]``, the task's
    max_context setting), a span may start only at a token in its max-context window. A question
    with no valid span has no entry: the official SQuAD script scores it 0, whatever its answers."""
    best: dict[int, tuple[float, str]] = {}
    max_context = features.get("max_context")
    for k, (starts, ends) in enumerate(zip(start_logits, end_logits)):
        example = features["example"][k]
        offsets = features["offsets"][k]
        context = records["context"][example]
        for s in np.argsort(starts)[::-1][:n_best]:
            if offsets[s] is None or (max_context is not None and not max_context[k][s]):
                continue
            for e in np.argsort(ends)[::-1][:n_best]:
                if offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                    continue
                score = float(starts[s] + ends[e])
                if example not in best or score > best[example][0]:
                    best[example] = (score, context[offsets[s][0]: offsets[e][1]])
    return {records["id"][i]: best[i][1] for i in range(len(records["id"])) if i in best}
