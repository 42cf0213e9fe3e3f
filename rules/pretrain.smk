# One pretraining run per ablation. Resumable state goes to state/pretrain/ (STATE), which is not
# a declared output: Snakemake deletes declared outputs before a rerun, state survives it.
rule pretrain:
    input:
        unpack(pretrain_instances),
        tokenizer=rules.tokenizer.output[0],
        # read only for its digest in metrics.json: what the instances were built from
        corpus=corpus_shard_dirs(),
    output:
        checkpoints=directory(path("pretrain", "checkpoints")),
        metrics=path("pretrain", "metrics.json"),
        steps=path("pretrain", "log.csv"),
    params:
        spec=ablation_spec,
        state=state_path("pretrain"),
        # TensorBoard events (pretrain.tensorboard): a log, not a declared output, kept on reruns
        tensorboard=state_path("tensorboard"),
    # Half the cores: two ablations pretrain side by side (tiny models scale poorly past a few
    # threads). Override per run with --set-threads pretrain=N.
    threads: max(1, workflow.cores // 2)
    resources:
        mem_mb=pretrain_request("mem_mb"),
        runtime=pretrain_request("runtime"),  # minutes, on one GPU (an upper bound with gpu > 1)
        # GPUs for this job (a profile sets it, e.g. --set-resources pretrain:gpu=4); more than
        # one runs torch DDP, one process per GPU, launched by torchrun inside the job.
        gpu=0,
    conda:
        "../envs/bert-ablation.yaml"
    log:
        log_path("pretrain"),
    benchmark:
        benchmark_path("pretrain")
    script:
        "../workflow_scripts/pretrain.py"
