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
        "logs/instances/{packing}-len{length}-shard-{shard}.log",
    benchmark:
        "logs/instances/{packing}-len{length}-shard-{shard}.benchmark.tsv"
    resources:
        mem_mb=8000,
        runtime=60,
    script:
        "../workflow_scripts/instances.py"
