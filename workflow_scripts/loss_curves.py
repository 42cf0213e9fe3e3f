"""Snakemake entry point: the pretraining loss of every ablation, one panel per objective."""
from bert_ablation.warm import run_in_warm_process

run_in_warm_process()  # with a local snakemake's warm server: this job runs in a fork of it (imports paid once)

from pathlib import Path

from bert_ablation.evaluation.plots import plot_loss_curves
from bert_ablation.workflow import job_logging

with job_logging(snakemake.log[0]):
    # results/pretrain/<ablation>/{log.csv,metrics.json}: the folder names the run.
    logs = {Path(path).parent.name: path for path in snakemake.input.logs}
    metrics = {Path(path).parent.name: path for path in snakemake.input.metrics}
    plot_loss_curves(logs, metrics, [snakemake.output.png, snakemake.output.pdf])
