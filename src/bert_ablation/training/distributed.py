"""Data-parallel pretraining (torch DDP) inside one job, launched by ``torchrun``.

Every rank trains on its share of the rows of a step's global batch (batches and masks are
functions of the step) and lets DDP average the gradients, so the run sees the same data
whatever the number of processes (``pretrain.step_batch`` says when a rank builds only its
rows). Rank 0 alone writes state, logs and checkpoints.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "Distributed":
        """The process group torchrun describes in the environment (a single process otherwise)."""
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                   int(os.environ.get("LOCAL_RANK", 0)))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def threads(self, job_threads: int | None) -> int | None:
        """This rank's share of the job's CPU threads: the ranks of one job share its cores."""
        return None if not job_threads else max(1, int(job_threads) // self.world_size)

    def device(self, requested: str | None) -> str:
        if requested:
            return requested
        if torch.cuda.is_available():
            return f"cuda:{self.local_rank}" if self.enabled else "cuda"
        return "cpu"

    def init(self, device: str) -> None:
        if self.enabled and not torch.distributed.is_initialized():
            backend = "nccl" if device.startswith("cuda") else "gloo"
            if device.startswith("cuda"):
                torch.cuda.set_device(torch.device(device))
            torch.distributed.init_process_group(backend, rank=self.rank, world_size=self.world_size)

    def shard(self, batch: dict) -> dict:
        """This rank's rows of a global batch (rows rank, rank + world, ...)."""
        if not self.enabled:
            return batch
        return {key: value[self.rank:: self.world_size] for key, value in batch.items()}

    def close(self) -> None:
        if self.enabled and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def torchrun_command(processes: int, module: str, *args: str) -> list[str]:
    """The command that runs ``python -m module args`` on ``processes`` local ranks."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
            "-m", module, *args]
