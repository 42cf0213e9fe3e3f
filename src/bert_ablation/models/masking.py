"""The masked-LM corruption of Devlin et al. (Sec. 3.1 and Appendix C.2), vectorised.

Each non-special token is selected for prediction with probability ``probability``; a selected
token becomes [MASK] with probability ``mask``, a random token with probability ``random``
and stays itself otherwise (``same``). Random tokens are drawn from the vocabulary *without*
special tokens (HF's DataCollatorForLanguageModeling draws from the whole vocabulary, which
can inject [CLS]/[SEP] mid-sequence). Masks are drawn per step (dynamic masking), from an
explicit generator so a step's mask is a pure function of its seed; or once per instance when
the instances are built (static masking, google-research/bert's create_pretraining_data.py):
``static_draws`` stores the selected positions with one uniform "fate" draw and one random
token each, and ``apply_static`` turns them into MASK/SAME/RND at the step with the run's own
mix, so the masking mixes of Table 8 share one set of instances. ``max_predictions`` caps the
predictions per sequence (the paper's max_predictions_per_seq: 20 at 128, 76 at 512).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ..settings import Masking

IGNORE_INDEX = -100  # the label value every torch/HF loss skips


@dataclass(frozen=True)
class MaskingProcedure:
    """Which tokens are selected (``probability``) and what becomes of them: the [MASK]/same/random
    shares. No defaults here: the config schema holds them (``config.schema_defaults("masking")``)."""
    probability: float
    mask: float
    same: float
    random: float
    max_predictions: int | None = None  # no cap

    @classmethod
    def from_config(cls, masking: Masking | dict) -> "MaskingProcedure":
        """From a spec's typed masking settings or its document (``masking:`` of a config)."""
        values = dataclasses.asdict(masking) if isinstance(masking, Masking) else masking
        return cls(**{k: float(values[k]) for k in ("probability", "mask", "same", "random")},
                   max_predictions=values.get("max_predictions"))


def cap_per_row(selected: torch.Tensor, scores: torch.Tensor, limit: int | None) -> torch.Tensor:
    """Keep at most ``limit`` selected positions per row: those with the smallest scores."""
    if limit is None:
        return selected
    order = torch.where(selected, scores, torch.full_like(scores, 2.0)).argsort(dim=1, stable=True)
    ranks = torch.empty_like(order).scatter_(1, order, torch.arange(order.shape[1]).expand_as(order))
    return selected & (ranks < limit)


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
        draw = torch.rand(input_ids.shape, generator=generator)
        selected = cap_per_row((draw < p.probability) & candidates, draw, p.max_predictions)
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

    def static_draws(self, input_ids: torch.Tensor, generator: torch.Generator, width: int
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stored masks for a block of instances: (positions (B, width), -1 where unused; fates
        uniform in [0, 1); random replacement ids). The selection is this procedure's; what a
        selected token becomes is decided later by ``apply_static`` with a run's own mix."""
        p = self.procedure
        candidates = ~torch.isin(input_ids, self.special_ids)
        draw = torch.rand(input_ids.shape, generator=generator)
        selected = cap_per_row((draw < p.probability) & candidates, draw, width)
        # the selected positions of each row, in order, left-aligned into `width` slots
        key = torch.where(selected, torch.arange(input_ids.shape[1]), input_ids.shape[1])
        positions = key.sort(dim=1).values[:, :width]
        positions = torch.where(positions < input_ids.shape[1], positions, -1)
        fates = torch.rand(positions.shape, generator=generator)
        random_ids = self.replacement_ids[torch.randint(len(self.replacement_ids), positions.shape, generator=generator)]
        return positions, fates, random_ids

    def apply_static(self, input_ids: torch.Tensor, positions: torch.Tensor, fates: torch.Tensor,
                     random_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(corrupted inputs, labels) from stored draws, with this procedure's MASK/SAME/RND mix."""
        p = self.procedure
        used = positions >= 0
        rows = torch.arange(len(input_ids))[:, None].expand_as(positions)[used]
        cols = positions[used].long()
        fate = fates[used]
        labels = torch.full_like(input_ids, IGNORE_INDEX)
        labels[rows, cols] = input_ids[rows, cols]
        corrupted = input_ids.clone()
        to_mask = fate < p.mask
        to_random = (fate >= p.mask) & (fate < p.mask + p.random)
        corrupted[rows[to_mask], cols[to_mask]] = self.mask_id
        corrupted[rows[to_random], cols[to_random]] = random_ids[used][to_random].to(input_ids.dtype)
        return corrupted, labels


def prediction_slots(labels: torch.Tensor, multiple: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """The labelled positions of a batch as fixed slots, as google-research/bert feeds
    ``masked_lm_positions``: (positions (K,) into the flattened (B * T) batch, row-major;
    targets (K,)), K the number of labels rounded up to ``multiple`` (at least ``multiple``),
    targets IGNORE_INDEX in the spare slots, whose position is 0 (a real position).

    Computed on the host before the batch goes to the device, this gives the device a gather of
    known size instead of boolean-mask indexing, whose output size the host must read back (a
    device sync) every step. Rounding up wastes fewer than ``multiple`` projections and keeps
    the number of distinct shapes (compiled kernels) small."""
    flat = labels.flatten()
    where = (flat != IGNORE_INDEX).nonzero().squeeze(1)  # on the host: no device to wait for
    slots = max(multiple, -(-len(where) // multiple) * multiple)
    positions = torch.zeros(slots, dtype=torch.long)
    positions[: len(where)] = where
    targets = torch.full((slots,), IGNORE_INDEX, dtype=flat.dtype)
    targets[: len(where)] = flat[where]
    return positions, targets
