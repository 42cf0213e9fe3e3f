"""The order in which one epoch visits examples, shared by pretraining and fine-tuning."""

from __future__ import annotations

import torch

MEGABATCH = 50  # batches per length-sorted group, as HF's LengthGroupedSampler


def epoch_batches(lengths, batch_size: int, generator: torch.Generator, group_by_length: bool,
                  drop_last: bool = False) -> list[list[int]]:
    """One epoch's batches of example indices, in a random order drawn from ``generator``.

    With ``group_by_length`` the shuffled examples are cut into megabatches of 50 batches, each
    sorted by length before being split into batches, so a batch holds examples of similar
    length and trimming it to its longest row wastes little; the batches are then shuffled
    again so that long and short ones alternate at random. ``drop_last`` drops the examples
    that would make a final short batch (before grouping, so every batch is full).
    """
    order = torch.randperm(len(lengths), generator=generator).tolist()
    if drop_last:
        order = order[: len(order) - len(order) % batch_size]
    if not group_by_length:
        return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    batches = []
    span = MEGABATCH * batch_size
    for start in range(0, len(order), span):
        group = sorted(order[start: start + span], key=lambda i: -int(lengths[i]))
        batches += [group[i: i + batch_size] for i in range(0, len(group), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def epoch_batch_matrix(lengths: torch.Tensor, batch_size: int, generator: torch.Generator,
                       group_by_length: bool) -> torch.Tensor:
    """``epoch_batches(..., drop_last=True)`` as one (batches, batch_size) tensor, computed without
    Python lists: the same batches in the same order from the same generator, in 8 bytes an
    example at the peak (int32 indices, megabatches sorted in place), since a pretraining epoch can
    hold hundreds of millions of examples."""
    dtype = torch.int32 if len(lengths) < 2**31 else torch.int64  # randperm draws the same permutation in both
    order = torch.randperm(len(lengths), generator=generator, dtype=dtype)
    order = order[: len(order) - len(order) % batch_size]
    if group_by_length:
        span = MEGABATCH * batch_size
        for start in range(0, len(order), span * 1024):  # a thousand megabatches at a time bounds the temporaries
            chunk = order[start: start + span * 1024]
            n_full = len(chunk) // span * span
            for part in (chunk[:n_full].view(-1, span), chunk[n_full:].view(1, -1)):
                if part.numel():
                    # a stable sort on -length is what sorted(key=-length) does: ties keep their order
                    by_length = torch.sort(-lengths[part].long(), dim=1, stable=True).indices
                    part.copy_(part.gather(1, by_length))  # part is a view: order is sorted in place
    batches = order.view(-1, batch_size)
    if not group_by_length:
        return batches
    return batches[torch.randperm(len(batches), generator=generator)]


class Prefetcher:
    """``make(step)`` for each of ``steps``, built ``depth`` steps ahead on a background thread
    while the device computes, and (``pin``) copied into page-locked host memory so that the
    engine's ``non_blocking`` copy to the GPU overlaps the compute too. Yields (step, batch) in
    order; an error in ``make`` is raised in the consumer at that step.

    Batches are pure functions of the step (seeded per step), so building them ahead changes
    nothing but when they are built. On a CPU the thread would only compete with the compute
    for the same cores, so the loops prefetch on CUDA only."""

    def __init__(self, make, steps, depth: int = 2, pin: bool = False):
        import queue
        import threading

        self.make, self.steps, self.pin = make, list(steps), pin
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._fill, name="prefetch", daemon=True)
        self.thread.start()

    def _fill(self) -> None:
        for step in self.steps:
            if self.stopped.is_set():
                return
            try:
                batch = self.make(step)
                if self.pin:
                    batch = {k: v.pin_memory() if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
                item = (step, batch, None)
            except BaseException as error:  # handed to the consumer, which raises it at this step
                item = (step, None, error)
            while not self.stopped.is_set():
                try:
                    self.queue.put(item, timeout=0.1)
                    break
                except Exception:  # queue.Full: the consumer is busy; look again for a stop
                    continue
            if item[2] is not None:
                return

    def __iter__(self):
        try:
            for _ in self.steps:
                step, batch, error = self.queue.get()
                if error is not None:
                    raise error
                yield step, batch
        finally:
            self.close()

    def close(self) -> None:
        """Stop building (the loop ended early: a stop, an error)."""
        self.stopped.set()
        self.thread.join()
