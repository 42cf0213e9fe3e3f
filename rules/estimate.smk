localrules:
    estimate,


# What the configuration will cost, before anything runs: snakemake --cores 1 estimate --configfile presets/X.yaml
rule estimate:
    output:
        markdown=f"{path('estimate')}.md",
        json=f"{path('estimate')}.json",
    params:
        config=as_param(config),
    log:
        log_path("estimate"),
    benchmark:
        benchmark_path("estimate")
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/bert-ablation.yaml"
    script:
        "../workflow_scripts/estimate.py"
