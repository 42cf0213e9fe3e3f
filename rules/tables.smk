localrules:
    table,
    loss_curves,
    claims,


# One rule for every table and figure of the config: cells, their runs and the paper's numbers.
rule table:
    input:
        unpack(table_inputs),
    output:
        csv=report(f"{path('table')}.csv", caption="../report/table.rst", category="Tables",
                   labels={"table": "{table}", "kind": "numbers"}),
        md=f"{path('table')}.md",
        tex=f"{path('table')}.tex",
        provenance=f"{path('table')}.provenance.json",
        png=report(f"{path('figure')}.png", caption="../report/table.rst", category="Tables",
                   labels={"table": "{table}", "kind": "figure"}),
        pdf=f"{path('figure')}.pdf",
    params:
        cells=table_cells,
        options=table_options,
    conda:
        "../envs/bert-ablation.yaml"
    log:
        log_path("table"),
    benchmark:
        benchmark_path("table")
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow_scripts/table.py"


rule loss_curves:
    input:
        logs=list(pretrain_logs().values()),
        # objective and held-out perplexity of each run: its panel and its legend label
        metrics=[path("pretrain", "metrics.json", ablation=a) for a in pretrain_logs()],
    output:
        png=report(f"{path('loss_curves')}.png", caption="../report/loss_curves.rst",
                   category="Pretraining"),
        pdf=f"{path('loss_curves')}.pdf",
    conda:
        "../envs/bert-ablation.yaml"
    log:
        log_path("loss_curves"),
    benchmark:
        benchmark_path("loss_curves")
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow_scripts/loss_curves.py"


rule claims:
    input:
        provenance_files(),
    output:
        csv=report(f"{path('claims')}.csv", caption="../report/claims.rst", category="Claims"),
        md=f"{path('claims')}.md",
    params:
        settings=claims_settings(),
    conda:
        "../envs/bert-ablation.yaml"
    log:
        log_path("claims"),
    benchmark:
        benchmark_path("claims")
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow_scripts/claims.py"


# Named targets: `snakemake --cores 2 table6` builds one table (or figure) and what it needs.
for _name in plan.report_names(config):

    rule:
        name:
            _name
        input:
            table_outputs(_name),
