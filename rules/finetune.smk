# One job per checkpoint x task x head x grid point runs all its restarts: the ~5 s import of
# torch + transformers is paid once, and each restart still writes its own metrics.json.
rule finetune:
    input:
        checkpoints=rules.pretrain.output.checkpoints,
        task=rules.tasks.output[0],
    output:
        restart_outputs(),
    params:
        settings=finetune_settings,
        pretrain_spec_hash=pretrain_spec_hash,
    threads: 1
    # A cluster profile can batch these short jobs into one submission (group-components).
    group:
        "finetune"
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        "../envs/bert-ablation.yaml"
    log:
        "logs/finetune/{ablation}/{step}/{task}/{head}/{hp}.log",
    benchmark:
        "logs/finetune/{ablation}/{step}/{task}/{head}/{hp}.benchmark.tsv"
    script:
        "../workflow_scripts/finetune.py"
