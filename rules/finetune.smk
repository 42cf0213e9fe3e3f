# One job per checkpoint x task x head x grid point runs all its restarts: the ~5 s import of
# torch + transformers is paid once, and each restart still writes its own metrics.json.
rule finetune:
    input:
        checkpoints=finetune_checkpoints,
        task=rules.tasks.output[0],
    output:
        restart_outputs(),
    params:
        settings=finetune_settings,
        pretrain_spec_hash=pretrain_spec_hash,
        # an interrupted job's finished restarts and last epochs (not declared outputs: they survive a rerun)
        state=state_path("finetune"),
    threads: 1
    # A cluster profile can batch these short jobs into one submission (group-components).
    group:
        "finetune"
    resources:
        mem_mb=finetune_request("mem_mb"),
        runtime=finetune_request("runtime"),  # minutes, every restart of the grid point
    conda:
        "../envs/bert-ablation.yaml"
    log:
        log_path("finetune"),
    benchmark:
        benchmark_path("finetune")
    script:
        "../workflow_scripts/finetune.py"


# On request, for any table cell's grid point (its path under results/finetune/), e.g.
#   snakemake --cores 1 results/figures/curves/bert_base/final/sst2/linear/lr0.0003_bs16_ep3.png
rule finetune_curves:
    input:
        restart_outputs(),
    output:
        png=f"{path('finetune_curves')}.png",
        pdf=f"{path('finetune_curves')}.pdf",
    conda:
        "../envs/bert-ablation.yaml"
    log:
        log_path("finetune_curves"),
    benchmark:
        benchmark_path("finetune_curves")
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../workflow_scripts/finetune_curves.py"
