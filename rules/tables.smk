localrules:
    table,
    loss_curves,
    claims,


# One rule for every table and figure of the config: cells, their runs and the paper's numbers.
rule table:
    input:
        unpack(table_inputs),
    output:
        csv=report("results/tables/{table}.csv", caption="../report/table.rst", category="Tables",
                   labels={"table": "{table}", "kind": "numbers"}),
        md="results/tables/{table}.md",
        tex="results/tables/{table}.tex",
        provenance="results/tables/{table}.provenance.json",
        png=report("results/figures/{table}.png", caption="../report/table.rst", category="Tables",
                   labels={"table": "{table}", "kind": "figure"}),
        pdf="results/figures/{table}.pdf",
    params:
        cells=table_cells,
        options=table_options,
    conda:
        "../envs/bert-ablation.yaml"
    log:
        "logs/tables/{table}.log",
    script:
        "../workflow_scripts/table.py"


rule loss_curves:
    input:
        logs=list(pretrain_logs().values()),
        # objective and held-out perplexity of each run: its panel and its legend label
        metrics=[f"results/pretrain/{a}/metrics.json" for a in pretrain_logs()],
    output:
        png=report("results/figures/pretraining_loss.png", caption="../report/loss_curves.rst",
                   category="Pretraining"),
        pdf="results/figures/pretraining_loss.pdf",
    conda:
        "../envs/bert-ablation.yaml"
    log:
        "logs/tables/pretraining_loss.log",
    script:
        "../workflow_scripts/loss_curves.py"


rule claims:
    input:
        provenance_files(),
    output:
        csv=report("results/claims.csv", caption="../report/claims.rst", category="Claims"),
        md="results/claims.md",
    params:
        settings=claims_settings(),
    conda:
        "../envs/bert-ablation.yaml"
    log:
        "logs/claims.log",
    script:
        "../workflow_scripts/claims.py"


# Named targets: `snakemake --cores 2 table6` builds one table (or figure) and what it needs.
for _name in cfg.report_names(config):

    rule:
        name:
            _name
        input:
            table_outputs(_name),
