rule corpus:
    input:
        corpus_files(),
    output:
        directory("results/corpus"),
    params:
        source=corpus_source(),
    conda:
        "../envs/bert-ablation.yaml"
    log:
        "logs/corpus.log",
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        "../workflow_scripts/corpus.py"
