# Instances per corpus shard (memory-mapped .npy arrays and a manifest); pretraining reads them all.
rule instances:
    input:
        corpus=path("corpus"),
        tokenizer=rules.tokenizer.output[0],
    output:
        directory(path("instances")),
    params:
        instances=instance_settings,
    conda:
        "../envs/bert-ablation.yaml"
    log:
        log_path("instances"),
    benchmark:
        benchmark_path("instances")
    resources:
        mem_mb=8000,
        runtime=data_request("instances"),
    script:
        "../workflow_scripts/instances.py"
