"""Snakemake entry point: the pretraining loss of every ablation on one plot."""
from bert_ablation.tables import plot_loss_curves
from bert_ablation.workflow import job_logging

with job_logging(snakemake.log[0]):
    plot_loss_curves(dict(snakemake.input.items()), [snakemake.output.png, snakemake.output.pdf])
