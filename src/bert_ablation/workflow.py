"""Glue between Snakemake's ``script:`` directive and the package: logging and arguments.

Each script in workflow_scripts/ unpacks the ``snakemake`` object and calls one package
function inside ``job_logging``, so every job's log (Python logging, warnings, tqdm progress,
tracebacks) lands in the rule's ``log:`` file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import traceback

from .runtime import LOG_FORMAT


@contextlib.contextmanager
def job_logging(log_path: str):
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    with open(log_path, "w", buffering=1) as handle:
        old_stderr = sys.stderr
        sys.stderr = handle
        logging.basicConfig(level=logging.INFO, stream=handle, force=True,
                            format=LOG_FORMAT)
        logging.captureWarnings(True)
        _quiet_libraries()
        try:
            yield
        except BaseException:
            traceback.print_exc(file=handle)
            raise
        finally:
            sys.stderr = old_stderr


def _quiet_libraries() -> None:
    """Keep logs readable: no per-file progress bars or load reports from HF libraries
    (our own tqdm progress and logging stay)."""
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # read when datasets is imported
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "transformers" in sys.modules:
        sys.modules["transformers"].logging.set_verbosity_error()
        sys.modules["transformers"].logging.disable_progress_bar()
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()


def params_json(snakemake, name: str):
    """Rule params are passed as canonical JSON strings (stable for Snakemake's rerun check)."""
    return json.loads(getattr(snakemake.params, name))
