"""Snakemake entry point: pretrain one ablation; on several GPUs, one torchrun process per GPU."""
from bert_ablation.warm import run_in_warm_process

run_in_warm_process()  # with a local snakemake's warm server: this job runs in a fork of it (imports paid once)

import json
import os
import subprocess
import sys
import tempfile

from bert_ablation import config as cfg
from bert_ablation import plan
from bert_ablation.evaluation.health import PretrainingHealthError
from bert_ablation.rehearsal import rehearse
from bert_ablation.training.distributed import torchrun_command
from bert_ablation.training.pretrain import pretrain
from bert_ablation.workflow import job_logging, params_json

# The params hold the run's identity; its execution-only settings (accumulation, log and state
# intervals, TensorBoard) come from today's config, so that changing them neither reruns the job
# nor, since the spec hash ignores them, starts the run over.
spec = params_json(snakemake, "spec")
# (a rehearsal's own: the same shrink the DAG was planned with)
current = plan.resolve_ablation(rehearse(cfg.validate(snakemake.config)), snakemake.wildcards.ablation)
spec["pretrain"].update(plan.execution_settings(current))
short = getattr(snakemake.input, "short_instances", None)
kwargs = dict(spec=spec, instances_dir=list(snakemake.input.instances),
              short_instances_dir=list(short) if short else None,
              tokenizer_dir=snakemake.input.tokenizer, corpus_dir=list(snakemake.input.corpus),
              checkpoints_dir=snakemake.output.checkpoints,
              metrics_path=snakemake.output.metrics, log_path=snakemake.output.steps,
              state_root=snakemake.params.state, threads=snakemake.threads,
              tensorboard_dir=snakemake.params.tensorboard)
gpus = int(getattr(snakemake.resources, "gpu", 0) or 0)
if gpus > 1:
    # Snakemake does not set CUDA_VISIBLE_DEVICES: the job sees the GPUs its scheduler gave it.
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(kwargs, handle)
    try:
        with open(snakemake.log[0], "w") as log:
            subprocess.run(torchrun_command(gpus, "bert_ablation.training.pretrain", handle.name), stdout=log, stderr=log,
                           check=True)
    finally:  # a failed torchrun must not leave the arguments file behind
        os.unlink(handle.name)
else:
    try:
        with job_logging(snakemake.log[0]):
            pretrain(**kwargs)
    except PretrainingHealthError as failed:  # pretrain.health: fail; the block on Snakemake's console too
        sys.exit(f"{failed}\n(the job's log: {snakemake.log[0]})")
