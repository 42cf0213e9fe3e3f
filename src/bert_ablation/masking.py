"""The masked-LM corruption of Devlin et al. (Sec. 3.1 and Appendix C.2), vectorised.

Each non-special token is selected for prediction with probability ``probability``; a selected
token becomes [MASK] with probability ``mask``, a random token with probability ``random``
and stays itself otherwise (``same``). Random tokens are drawn from the vocabulary *without*
special tokens (HF's DataCollatorForLanguageModeling draws from the whole vocabulary, which
can inject [CLS]/[SEP] mid-sequence). Masks are drawn per step (dynamic masking), from an
explicit generator so a step's mask is a pure function of its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE_INDEX = -100  # the label value every torch/HF loss skips


@dataclass(frozen=True)
class MaskingProcedure:
    probability: float = 0.15
    mask: float = 0.8
    same: float = 0.1
    random: float = 0.1

    @classmethod
    def from_config(cls, masking: dict) -> "MaskingProcedure":
        return cls(**{k: float(masking[k]) for k in ("probability", "mask", "same", "random")})


class Masker:
    """Applies a masking procedure for one vocabulary."""

    def __init__(self, procedure: MaskingProcedure, vocab_size: int, special_ids: list[int], mask_id: int):
        self.procedure = procedure
        self.mask_id = mask_id
        self.special_ids = torch.tensor(sorted(set(special_ids)), dtype=torch.long)
        keep = torch.ones(vocab_size, dtype=torch.bool)
        keep[self.special_ids] = False
        self.replacement_ids = keep.nonzero().squeeze(1)  # (V - specials,)

    @classmethod
    def for_tokenizer(cls, procedure: MaskingProcedure, tokenizer) -> "Masker":
        return cls(procedure, len(tokenizer), tokenizer.all_special_ids, tokenizer.mask_token_id)

    def __call__(self, input_ids: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (corrupted inputs, labels); labels are IGNORE_INDEX where nothing is predicted."""
        p = self.procedure
        candidates = ~torch.isin(input_ids, self.special_ids)  # (B, T): never [CLS], [SEP], [PAD]
        selected = (torch.rand(input_ids.shape, generator=generator) < p.probability) & candidates
        labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
        # One uniform draw decides the fate of each selected token: [0, mask) -> [MASK],
        # [mask, mask + random) -> random token, the rest -> unchanged.
        fate = torch.rand(input_ids.shape, generator=generator)
        to_mask = selected & (fate < p.mask)
        to_random = selected & (fate >= p.mask) & (fate < p.mask + p.random)
        corrupted = input_ids.clone()
        corrupted[to_mask] = self.mask_id
        picks = torch.randint(len(self.replacement_ids), (int(to_random.sum()),), generator=generator)
        corrupted[to_random] = self.replacement_ids[picks]
        return corrupted, labels
