"""A pretraining run's batches: stored instances read row by row into fixed-size batches that are
a pure function of (seed, step), so a resumed run sees exactly the batches an uninterrupted one
would; and the generator of each step's masks.
"""

from __future__ import annotations

import math

import torch

from ..data.instance_store import STATIC_FIELDS, InstanceStore
from ..storage import derive_seed
from .batching import epoch_batch_matrix


class InstanceBatches:
    """Fixed-size batches of stored instances (read from disk row by row, across shards), trimmed to their
    longest row; with ``group_by_length``, batches hold instances of similar length, so trimming
    removes most padding (instances of short documents are far shorter than max_seq_length)."""

    def __init__(self, shard_dirs: list[str] | str, split: str, batch_size: int, seed: int,
                 group_by_length: bool = False):
        self.store = InstanceStore(shard_dirs, split)
        self.path = self.store.paths[0] if len(self.store.paths) == 1 else f"{len(self.store.paths)} shards of {split}"
        self.batch_size, self.seed, self.group_by_length = batch_size, seed, group_by_length
        self.lengths = torch.from_numpy(self.store.lengths)
        self.steps_per_epoch = len(self) // batch_size
        self._epoch: tuple[int, torch.Tensor] | None = None  # (epoch, its batches), drawn once per epoch

    def __len__(self) -> int:
        return len(self.store)

    @property
    def static_masks(self) -> bool:
        """Whether the instances carry their masks (instances.static_masking)."""
        return all(field in self.store.fields for field in STATIC_FIELDS)

    def rows(self, index: torch.Tensor, width: int | None = None) -> dict:
        """Rows ``index``, trimmed to ``width`` columns (their longest row by default)."""
        width = int(self.lengths[index].max()) if width is None else width
        rows = self.store.gather(index.numpy(), width, ("segment_b", "next_sentence_label", *STATIC_FIELDS))
        lengths = self.lengths[index].long()  # in memory already: not read again
        positions = torch.arange(width)
        inside = positions < lengths[:, None]
        return {
            "input_ids": torch.from_numpy(rows["input_ids"]),
            "token_type_ids": ((positions >= torch.from_numpy(rows["segment_b"])[:, None]) & inside).long(),
            "attention_mask": inside.long(),
            "next_sentence_label": torch.from_numpy(rows["next_sentence_label"]),
            **{field: torch.from_numpy(rows[field]) for field in STATIC_FIELDS if field in rows},
        }

    def index_for_step(self, step: int) -> torch.Tensor:
        """The instances of ``step`` (global indices, in batch order)."""
        if not self.steps_per_epoch:
            raise ValueError(f"{self.path}: {len(self)} instances, fewer than one batch of {self.batch_size}; "
                             "use a larger corpus, a larger instances.dupe_factor or a smaller batch_size.")
        epoch, k = divmod(step, self.steps_per_epoch)
        if self._epoch is None or self._epoch[0] != epoch:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, "epoch", epoch))
            self._epoch = (epoch, epoch_batch_matrix(self.lengths, self.batch_size, generator, self.group_by_length))
        return self._epoch[1][k]

    def for_step(self, step: int) -> dict:
        return self.rows(self.index_for_step(step))

    def in_order(self, max_batches: int):
        for k in range(min(max_batches, math.ceil(len(self) / self.batch_size))):
            yield self.rows(torch.arange(k * self.batch_size, min(len(self), (k + 1) * self.batch_size)))


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, "mask", step))
