"""Snakemake entry point: pack one corpus shard's documents into pretraining instances."""
from bert_ablation.warm import run_in_warm_process

run_in_warm_process()  # with a local snakemake's warm server: this job runs in a fork of it (imports paid once)

from bert_ablation.data.instances import build_instances
from bert_ablation.workflow import job_logging, params_json

with job_logging(snakemake.log[0]):
    build_instances(snakemake.input.corpus, snakemake.input.tokenizer, snakemake.wildcards.packing,
                    params_json(snakemake, "instances"), snakemake.output[0], int(snakemake.wildcards.shard))
