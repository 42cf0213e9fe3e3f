"""What a running job says about itself: the format of its log lines and its peak memory.

Below every layer that runs jobs (the two loops, the Snakemake glue in ``workflow``), so that
none of them reaches up into another for these; torch is imported only where a GPU is measured.
"""

from __future__ import annotations

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def peak_memory(device) -> dict:
    """This process's peak memory so far, in MB: its resident set (RSS: what a CPU job needs,
    torch and the data included) and, on a GPU, the allocator's peak (what the device needs)."""
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    peak = {"peak_rss_mb": round(rss / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)}
    if str(device).startswith("cuda"):
        import torch

        peak["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / (1 << 20), 1)
    return peak
