localrules:
    rehearsal,


# With rehearse: true, part of `all`: every rule's measured step time and peak memory at the real
# shapes, extrapolated to the full run beside what the cluster profile requests (docs/rehearsal.md).
rule rehearsal:
    input:
        # rehearsal.tables: only those tables' jobs (the released preset's), else every one
        [p for name in config["rehearsal"]["tables"] for p in table_outputs(name)] or all_outputs(rehearsal=False),
    output:
        markdown=f"{path('rehearsal')}.md",
        json=f"{path('rehearsal')}.json",
    params:
        full=as_param(full_config),
        rehearsed=as_param(config),
        resources=as_param(rule_resources()),
        profile=os.path.join(workflow.basedir, "profiles", "slurm", "config.yaml"),
        title=" + ".join(os.path.basename(f) for f in workflow.configfiles),
    log:
        log_path("rehearsal"),
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/bert-ablation.yaml"
    script:
        "../workflow_scripts/rehearsal.py"
