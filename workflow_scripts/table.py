"""Snakemake entry point: aggregate restarts into one paper table or figure."""
from bert_ablation.evaluation.tables import write_table
from bert_ablation.workflow import job_logging, params_json

with job_logging(snakemake.log[0]):
    write_table(params_json(snakemake, "cells"), snakemake.wildcards.table, list(snakemake.input.finetune),
                list(snakemake.input.pretrain), dict(snakemake.output), **params_json(snakemake, "options"))
