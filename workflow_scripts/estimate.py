"""Snakemake entry point: the compute and disk estimate of the configuration."""
from bert_ablation.warm import run_in_warm_process

run_in_warm_process()  # with a local snakemake's warm server: this job runs in a fork of it (imports paid once)

from bert_ablation.estimate import write_estimate
from bert_ablation.workflow import job_logging, params_json

with job_logging(snakemake.log[0]):
    write_estimate(params_json(snakemake, "config"), snakemake.output.markdown, snakemake.output.json)
