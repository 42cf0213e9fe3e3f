rule tasks:
    input:
        task_files,
    output:
        directory("results/tasks/{task}"),
    params:
        source=task_source,
    conda:
        "../envs/bert-ablation.yaml"
    log:
        "logs/tasks/{task}.log",
    benchmark:
        "logs/tasks/{task}.benchmark.tsv"
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        "../workflow_scripts/tasks.py"
