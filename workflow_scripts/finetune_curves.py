"""Snakemake entry point: the per-epoch dev curves of one fine-tuning grid point's restarts."""
from bert_ablation.warm import run_in_warm_process

run_in_warm_process()  # with a local snakemake's warm server: this job runs in a fork of it (imports paid once)

from bert_ablation.evaluation.plots import plot_finetune_curves
from bert_ablation.workflow import job_logging

with job_logging(snakemake.log[0]):
    plot_finetune_curves(list(snakemake.input), snakemake.output.png, snakemake.output.pdf)
