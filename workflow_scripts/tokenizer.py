"""Snakemake entry point: train the WordPiece vocabulary."""
from bert_ablation.tokenizer import build_tokenizer
from bert_ablation.workflow import job_logging, params_json

with job_logging(snakemake.log[0]):
    build_tokenizer(snakemake.input[0], snakemake.output[0], params_json(snakemake, "tokenizer"))
