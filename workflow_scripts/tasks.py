"""Snakemake entry point: load one task into its hub record schema."""
from bert_ablation.data.task_sources import build_task
from bert_ablation.workflow import job_logging, params_json

with job_logging(snakemake.log[0]):
    source = params_json(snakemake, "source")
    build_task(snakemake.wildcards.task, source["task"], source["world"], snakemake.output[0])
