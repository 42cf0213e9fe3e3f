"""Snakemake entry point: load one task into its hub record schema."""
from bert_ablation.warm import run_in_warm_process

run_in_warm_process()  # with a local snakemake's warm server: this job runs in a fork of it (imports paid once)

from bert_ablation.data.task_sources import build_task
from bert_ablation.workflow import job_logging, params_json

with job_logging(snakemake.log[0]):
    source = params_json(snakemake, "source")
    build_task(snakemake.wildcards.task, source["task"], source["world"], snakemake.output[0])
