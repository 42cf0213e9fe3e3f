localrules:
    estimate,


# What the configuration will cost, before anything runs: snakemake --cores 1 estimate --configfile presets/X.yaml
rule estimate:
    output:
        markdown="results/estimate.md",
        json="results/estimate.json",
    params:
        config=as_param(config),
    log:
        "logs/estimate.log",
    benchmark:
        "logs/estimate.benchmark.tsv"
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/bert-ablation.yaml"
    script:
        "../workflow_scripts/estimate.py"
