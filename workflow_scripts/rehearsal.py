"""Snakemake entry point: the rehearsal's measurements, extrapolated to the full run."""
from bert_ablation.warm import run_in_warm_process

run_in_warm_process()  # with a local snakemake's warm server: this job runs in a fork of it (imports paid once)

from bert_ablation.rehearsal_report import profile_requests, write_report
from bert_ablation.storage import read_yaml
from bert_ablation.workflow import job_logging, params_json

with job_logging(snakemake.log[0]):
    with open(snakemake.params.profile, encoding="utf-8") as handle:
        profile = read_yaml(handle.read())
    requests = profile_requests(profile, params_json(snakemake, "resources"))
    write_report(params_json(snakemake, "full"), params_json(snakemake, "rehearsed"), requests,
                 snakemake.output.markdown, snakemake.output.json, title=snakemake.params.title)
