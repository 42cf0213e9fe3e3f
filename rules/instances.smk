rule instances:
    input:
        corpus=rules.corpus.output[0],
        tokenizer=rules.tokenizer.output[0],
    output:
        train="results/instances/{packing}/len{length}/train.npz",
        heldout="results/instances/{packing}/len{length}/heldout.npz",
    params:
        instances=instance_settings,
    conda:
        "../envs/bert-ablation.yaml"
    log:
        "logs/instances/{packing}-len{length}.log",
    resources:
        mem_mb=8000,
        runtime=60,
    script:
        "../workflow_scripts/instances.py"
