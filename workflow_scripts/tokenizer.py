"""Snakemake entry point: learn the WordPiece vocabulary from every shard's word counts."""
from bert_ablation.warm import run_in_warm_process

run_in_warm_process()  # with a local snakemake's warm server: this job runs in a fork of it (imports paid once)

from bert_ablation.data.tokenizer import build_tokenizer
from bert_ablation.workflow import job_logging, params_json

with job_logging(snakemake.log[0]):
    build_tokenizer(list(snakemake.input), snakemake.output[0], params_json(snakemake, "tokenizer"))
