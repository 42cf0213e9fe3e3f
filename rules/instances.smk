rule instances:
    input:
        corpus=rules.corpus.output[0],
        tokenizer=rules.tokenizer.output[0],
    output:
        train="results/instances/{packing}/train.npz",
        heldout="results/instances/{packing}/heldout.npz",
    params:
        instances=as_param(config["instances"]),
    conda:
        "../envs/bert-ablation.yaml"
    log:
        "logs/instances/{packing}.log",
    resources:
        mem_mb=8000,
        runtime=60,
    script:
        "../workflow_scripts/instances.py"
