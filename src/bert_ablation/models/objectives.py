"""Pretraining objectives at work: how each makes a batch's targets. What an objective is
(causal, NSP, the packings it accepts) is a fact of ``facts.objectives``; ``OBJECTIVES`` here
holds the same entries with ``targets`` added.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ..facts import objectives
from .masking import IGNORE_INDEX, Masker


@dataclass(frozen=True)
class Objective(objectives.Objective):
    def targets(self, batch: dict, masker: Masker, generator: torch.Generator) -> dict:
        """Add the objective's labels to a batch of clean inputs (and corrupt them if masked): with
        the masks stored in the batch (static masking) or drawn from ``generator`` (dynamic)."""
        batch = dict(batch)
        nsp_labels = batch.pop("next_sentence_label")
        static = [batch.pop(k) for k in ("masked_positions", "mask_fates", "mask_random_ids") if k in batch]
        if self.causal:
            batch["labels"] = next_token_labels(batch["input_ids"], batch["attention_mask"])
        elif static:  # masks stored with the instances (instances.static_masking), this run's mix
            batch["input_ids"], batch["labels"] = masker.apply_static(batch["input_ids"], *static)
        else:
            batch["input_ids"], batch["labels"] = masker(batch["input_ids"], generator)
        if self.nsp:  # config validation guarantees NSP objectives get nsp_pairs packing
            batch["next_sentence_label"] = nsp_labels
        return batch


def next_token_labels(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """labels[:, t] = input_ids[:, t + 1]: the one and only shift of the LTR objective.

    Our pretraining model scores position t against labels[:, t] without shifting, unlike
    HF's causal-LM heads, which shift internally; so exactly one shift happens either way.
    """
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    labels[:, :-1] = torch.where(attention_mask[:, 1:].bool(), input_ids[:, 1:], IGNORE_INDEX)
    return labels


OBJECTIVES: dict[str, Objective] = {
    name: Objective(**dataclasses.asdict(facts))
    for name, facts in objectives.OBJECTIVES.items()
}
