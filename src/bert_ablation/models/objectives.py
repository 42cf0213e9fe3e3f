"""Pretraining objectives: what the model predicts, and from which inputs.

An objective is independent of how inputs are packed (sentence pairs or contiguous text):
``packings`` lists those it accepts, the first being its default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch stays out of config validation's imports: objectives are planning facts too
    import torch

    from .masking import Masker


@dataclass(frozen=True)
class Objective:
    name: str
    description: str
    causal: bool  # left-to-right attention and next-token targets instead of masked tokens
    nsp: bool  # adds the next-sentence-prediction loss on the pooled [CLS]
    packings: tuple[str, ...]

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
    import torch

    from .masking import IGNORE_INDEX

    labels = torch.full_like(input_ids, IGNORE_INDEX)
    labels[:, :-1] = torch.where(attention_mask[:, 1:].bool(), input_ids[:, 1:], IGNORE_INDEX)
    return labels


OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective("mlm_nsp", "masked LM + next sentence prediction (BERT)", causal=False, nsp=True,
                  packings=("nsp_pairs",)),
        Objective("mlm", "masked LM only (No NSP)", causal=False, nsp=False,
                  packings=("contiguous", "nsp_pairs")),
        Objective("ltr", "left-to-right LM (LTR & No NSP, GPT-like)", causal=True, nsp=False,
                  packings=("contiguous", "nsp_pairs")),
    )
}
