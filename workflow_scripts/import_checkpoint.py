"""Snakemake entry point: import one released or local checkpoint."""
from bert_ablation.warm import run_in_warm_process

run_in_warm_process()  # with a local snakemake's warm server: this job runs in a fork of it (imports paid once)

from bert_ablation.models.checkpoints import import_checkpoint
from bert_ablation.plan import checkpoint_hash
from bert_ablation.workflow import job_logging, params_json

with job_logging(snakemake.log[0]):
    source = params_json(snakemake, "source")
    import_checkpoint(snakemake.wildcards.checkpoint, source, snakemake.output.checkpoints, snakemake.output.metrics,
                      checkpoint_hash(source))
