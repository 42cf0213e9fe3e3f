"""Pretraining objectives as facts: what the model predicts, and from which inputs.

An objective is independent of how inputs are packed (sentence pairs or contiguous text):
``packings`` lists those it accepts, the first being its default. Config validation and the
plan read these; ``models.objectives`` adds how an objective makes a batch's targets.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Objective:
    name: str
    description: str
    causal: bool  # left-to-right attention and next-token targets instead of masked tokens
    nsp: bool  # adds the next-sentence-prediction loss on the pooled [CLS]
    packings: tuple[str, ...]


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
