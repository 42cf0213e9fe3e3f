localrules:
    table,


rule table:
    input:
        table_metrics,
    output:
        csv="results/tables/{table}.csv",
        md="results/tables/{table}.md",
        tex="results/tables/{table}.tex",
        provenance="results/tables/{table}.provenance.json",
        png="results/figures/{table}.png",
    params:
        cells=table_cells,
    conda:
        "../envs/bert-ablation.yaml"
    log:
        "logs/tables/{table}.log",
    script:
        "../workflow_scripts/table.py"


# Named targets: `snakemake --cores 2 table5` builds one table and what it needs.
for _table in sorted(config["tables"]):

    rule:
        name:
            _table
        input:
            table_outputs(_table),
