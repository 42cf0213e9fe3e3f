"""Snakemake entry point: pretrain one ablation."""
import os

from bert_ablation.pretrain import pretrain
from bert_ablation.workflow import job_logging, params_json

with job_logging(snakemake.log[0]):
    pretrain(params_json(snakemake, "spec"), os.path.dirname(snakemake.input.instances[0]), snakemake.input.tokenizer,
             snakemake.output.checkpoints, snakemake.output.metrics, snakemake.output.steps, snakemake.params.state,
             threads=snakemake.threads)
