# A released or local checkpoint (config's checkpoints:), imported once so that fine-tuning,
# tables and claims treat it as they treat a pretraining run's final checkpoint.
rule import_checkpoint:
    input:
        checkpoint_files,
    output:
        checkpoints=directory(path("imported", "checkpoints")),
        metrics=path("imported", "metrics.json"),
    params:
        source=checkpoint_source,
    conda:
        "../envs/bert-ablation.yaml"
    log:
        log_path("import_checkpoint"),
    benchmark:
        benchmark_path("import_checkpoint")
    resources:
        mem_mb=8000,
        runtime=60,
    script:
        "../workflow_scripts/import_checkpoint.py"
