"""Snakemake entry point: judge the paper's claims on our tables."""
from bert_ablation.warm import run_in_warm_process

run_in_warm_process()  # with a local snakemake's warm server: this job runs in a fork of it (imports paid once)

from bert_ablation.evaluation.claims import check_claims
from bert_ablation.workflow import job_logging, params_json

with job_logging(snakemake.log[0]):
    settings = params_json(snakemake, "settings")
    check_claims(list(snakemake.input), snakemake.output.csv, snakemake.output.md, claims_path=settings["file"],
                 alpha=settings["alpha"], test=settings["test"], bootstrap_samples=settings["bootstrap_samples"],
                 seed=settings["seed"], correction=settings["correction"],
                 preconditions=settings["preconditions"])
