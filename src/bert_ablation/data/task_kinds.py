"""Task kinds: everything that differs between classification, regression, span (extractive QA)
and tagging, one object a kind, as ``OBJECTIVES`` and ``HEADS`` are for their axes.

A kind owns its label keys, how records become features, the task layer's width, the loss on
its logits, how outputs are decoded and scored, which label values a record may carry and what a
split's summary counts. ``tasks.TaskSpec.kind`` names one; nothing else branches on the name.

Torch-free at import (validation and planning read ``TASK_KINDS``): features, metrics and
torch are imported by the methods that need them.
"""

from __future__ import annotations

from ..facts import kinds


class TaskKind(kinds.TaskKind):
    def featurize(self, spec, records: dict, tokenizer, settings: dict, train: bool) -> dict:
        from .features import classification_features

        return classification_features(spec, records, tokenizer, settings["max_seq_length"])

    def loss(self, logits, attention_mask, labels=None, start_positions=None, end_positions=None):
        """(loss or None, the logits as the task reads them)."""
        raise NotImplementedError

    def score(self, spec, records: dict, features: dict, outputs: list, settings: dict) -> dict:
        raise NotImplementedError

    def constant_prediction(self, spec, outputs: list) -> str | None:
        """The label predicted for every example, where a kind can collapse to one; else None."""
        return None


class Classification(TaskKind, kinds.Classification):
    """One label per sequence, from the head's summary vector."""

    def loss(self, logits, attention_mask, labels=None, start_positions=None, end_positions=None):
        import torch.nn.functional as F

        return (None if labels is None else F.cross_entropy(logits, labels)), logits

    def score(self, spec, records, features, outputs, settings):
        from ..evaluation.metrics import classification_scores

        return classification_scores([int(o.argmax()) for o in outputs], features["labels"], spec.metrics)

    def constant_prediction(self, spec, outputs):
        # A collapsed run (fine-tuning that diverged to one class) scores that class's share: chance.
        if not outputs:
            return None
        predicted = {int(o.argmax()) for o in outputs}
        return spec.labels[predicted.pop()] if len(predicted) == 1 else None


class Regression(TaskKind, kinds.Regression):
    """One score per sequence from the summary vector: a single output trained with mean squared
    error (HF's problem_type="regression")."""

    def loss(self, logits, attention_mask, labels=None, start_positions=None, end_positions=None):
        import torch.nn.functional as F

        return (None if labels is None else F.mse_loss(logits.squeeze(-1).float(), labels.float())), logits

    def score(self, spec, records, features, outputs, settings):
        from ..evaluation.metrics import regression_scores

        return regression_scores([float(o[0]) for o in outputs], features["labels"])


class Span(TaskKind, kinds.Span):
    """Start and end logits per token (SQuAD); the loss averages the two."""

    def featurize(self, spec, records, tokenizer, settings, train):
        from .features import span_features

        return span_features(records, tokenizer, settings, train)

    def loss(self, logits, attention_mask, labels=None, start_positions=None, end_positions=None):
        import torch
        import torch.nn.functional as F

        # Padding can never be an answer boundary.
        logits = logits.masked_fill(~attention_mask.bool().unsqueeze(-1), torch.finfo(logits.dtype).min)
        if start_positions is None:
            return None, logits
        return (F.cross_entropy(logits[..., 0], start_positions) + F.cross_entropy(logits[..., 1], end_positions)) / 2, logits

    def score(self, spec, records, features, outputs, settings):
        from ..evaluation.metrics import squad_scores
        from .features import best_spans

        predictions = best_spans(records, features, [o[:, 0] for o in outputs], [o[:, 1] for o in outputs],
                                 settings["n_best"], settings["max_answer_length"])
        references = {qid: a["text"] for qid, a in zip(records["id"], records["answers"])}
        return squad_scores(predictions, references)


class Tagging(TaskKind, kinds.Tagging):
    """One label per word; only labelled tokens (first sub-tokens) count."""

    def featurize(self, spec, records, tokenizer, settings, train):
        from .features import tagging_features

        return tagging_features(records, tokenizer, settings["max_seq_length"], settings["document_context"])

    def loss(self, logits, attention_mask, labels=None, start_positions=None, end_positions=None):
        import torch.nn.functional as F

        from ..models.masking import IGNORE_INDEX

        if labels is None:
            return None, logits
        return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX), logits

    def score(self, spec, records, features, outputs, settings):
        from ..evaluation.metrics import ner_scores

        predictions = [[spec.labels[int(out[p].argmax())] if p is not None else "O" for p in positions]
                       for out, positions in zip(outputs, features["word_positions"])]
        references = [[spec.labels[t] for t in tags] for tags in records["ner_tags"]]
        return ner_scores(predictions, references)


TASK_KINDS: dict[str, TaskKind] = {kind.name: kind for kind in (Classification(), Regression(), Span(), Tagging())}
