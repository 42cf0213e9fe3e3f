"""Snakemake entry point: aggregate restarts into one paper table or figure."""
from bert_ablation.warm import run_in_warm_process

run_in_warm_process()  # with a local snakemake's warm server: this job runs in a fork of it (imports paid once)

from bert_ablation.evaluation.tables import write_table
from bert_ablation.plan import Cell
from bert_ablation.workflow import job_logging, params_json

with job_logging(snakemake.log[0]):
    cells = [Cell(**cell) for cell in params_json(snakemake, "cells")]  # the rule's JSON params
    write_table(cells, snakemake.wildcards.table, list(snakemake.input.finetune),
                list(snakemake.input.pretrain), dict(snakemake.output), **params_json(snakemake, "options"))
