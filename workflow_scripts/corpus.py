"""Snakemake entry point: materialise one shard of the pretraining corpus."""
from bert_ablation.warm import run_in_warm_process

run_in_warm_process()  # with a local snakemake's warm server: this job runs in a fork of it (imports paid once)

from bert_ablation.data.corpus import build_corpus
from bert_ablation.workflow import job_logging, params_json

with job_logging(snakemake.log[0]):
    build_corpus(params_json(snakemake, "source"), snakemake.output[0], int(snakemake.wildcards.shard))
