"""Snakemake entry point: fine-tune one checkpoint on one task, all restarts."""
import os

from bert_ablation.training.finetune import finetune
from bert_ablation.workflow import job_logging, params_json

with job_logging(snakemake.log[0]):
    finetune(os.path.join(snakemake.input.checkpoints, snakemake.wildcards.step), snakemake.input.task,
             snakemake.wildcards.task, snakemake.wildcards.head, params_json(snakemake, "settings"),
             list(snakemake.output), threads=snakemake.threads,
             expected_spec_hash=snakemake.params.pretrain_spec_hash, state_root=snakemake.params.state)
