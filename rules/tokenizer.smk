# Words are counted per corpus shard; the vocabulary is learnt from the merged counts (gather).
rule word_counts:
    input:
        path("corpus"),
    output:
        path("word_counts"),
    params:
        lowercase=config["tokenizer"]["lowercase"],
    conda:
        "../envs/bert-ablation.yaml"
    log:
        log_path("word_counts"),
    benchmark:
        benchmark_path("word_counts")
    resources:
        mem_mb=4000,
        runtime=data_request("word_counts"),
    script:
        "../workflow_scripts/word_counts.py"


rule tokenizer:
    input:
        [path("word_counts", shard=k) for k in corpus_shards()],
    output:
        directory(path("tokenizer")),
    params:
        tokenizer=as_param(config["tokenizer"]),
    conda:
        "../envs/bert-ablation.yaml"
    log:
        log_path("tokenizer"),
    benchmark:
        benchmark_path("tokenizer")
    resources:
        mem_mb=8000,
        runtime=data_request("tokenizer"),
    script:
        "../workflow_scripts/tokenizer.py"
