"""The task kinds as the fine-tuning loop uses them: one object a kind gathering what each layer
does for it, so that ``finetune`` reads one registry and never branches on a kind's name.

What a kind is (its label keys, per-token outputs) is ``facts.kinds``'; how its records become
features is ``data.features``'; how its outputs are decoded and scored, and whether it can
collapse to one label, is ``evaluation.scoring``'. Its loss is the model's own
(``models.modeling.TASK_LOSSES``, computed in ``FinetuneModel.forward``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..data.features import FEATURIZERS
from ..evaluation.scoring import SCORERS, constant_prediction
from ..facts.kinds import KINDS, TaskKind


@dataclass(frozen=True)
class FinetuneKind:
    facts: TaskKind
    featurize: Callable  # (spec, records, tokenizer, task settings, train) -> features
    score: Callable  # (spec, records, features, outputs, task settings) -> metrics
    constant_prediction: Callable  # (spec, outputs) -> the one label every output predicts, or None

    @property
    def label_keys(self) -> tuple[str, ...]:
        return self.facts.label_keys

    @property
    def per_token(self) -> bool:
        return self.facts.per_token


TASK_KINDS: dict[str, FinetuneKind] = {
    name: FinetuneKind(kind, FEATURIZERS[name], SCORERS[name], constant_prediction) for name, kind in KINDS.items()
}
