"""Snakemake entry point: count the words of one corpus shard."""
from bert_ablation.warm import run_in_warm_process

run_in_warm_process()  # with a local snakemake's warm server: this job runs in a fork of it (imports paid once)

from bert_ablation.data.tokenizer import count_words
from bert_ablation.workflow import job_logging

with job_logging(snakemake.log[0]):
    count_words(snakemake.input[0], snakemake.output[0], snakemake.params.lowercase)
