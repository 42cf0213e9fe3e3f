rule tokenizer:
    input:
        rules.corpus.output[0],
    output:
        directory("results/tokenizer"),
    params:
        tokenizer=as_param(config["tokenizer"]),
    conda:
        "../envs/bert-ablation.yaml"
    log:
        "logs/tokenizer.log",
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        "../workflow_scripts/tokenizer.py"
