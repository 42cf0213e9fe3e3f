rule tasks:
    input:
        task_files,
    output:
        directory(path("tasks")),
    params:
        source=task_source,
    conda:
        "../envs/bert-ablation.yaml"
    log:
        log_path("tasks"),
    benchmark:
        benchmark_path("tasks")
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        "../workflow_scripts/tasks.py"
