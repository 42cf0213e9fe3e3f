"""Snakemake entry point: fine-tune one ablation's checkpoints (one per pretraining seed) on one task, all restarts."""
from bert_ablation.warm import run_in_warm_process

run_in_warm_process()  # with a local snakemake's warm server: this job runs in a fork of it (imports paid once)

import os

from bert_ablation.training.finetune import finetune
from bert_ablation.workflow import job_logging, params_json

with job_logging(snakemake.log[0]):
    checkpoints = [snakemake.input.checkpoints] if isinstance(snakemake.input.checkpoints, str) else \
        list(snakemake.input.checkpoints)
    finetune([os.path.join(folder, snakemake.wildcards.step) for folder in checkpoints], snakemake.input.task,
             snakemake.wildcards.task, snakemake.wildcards.head, params_json(snakemake, "settings"),
             list(snakemake.output), threads=snakemake.threads,
             expected_spec_hash=list(snakemake.params.pretrain_spec_hash), state_root=snakemake.params.state)
