# The corpus in config["corpus"]["shards"] pieces, one job each (scatter): a shard's memory is
# bounded by its own documents, and shards run side by side on a cluster or a laptop's cores.
rule corpus:
    input:
        corpus_files,
    output:
        directory(path("corpus")),
    params:
        source=corpus_source(),
    conda:
        "../envs/bert-ablation.yaml"
    log:
        log_path("corpus"),
    benchmark:
        benchmark_path("corpus")
    resources:
        mem_mb=4000,
        runtime=data_request("corpus"),
    script:
        "../workflow_scripts/corpus.py"
