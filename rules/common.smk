# Configuration is validated (schema + cross-field rules) at parse time, before any job runs,
# and every helper that turns it into paths or params lives here.
import json

from bert_ablation import config as cfg
from bert_ablation.storage import canonical_json

try:
    config = cfg.validate(config, source="config")
except cfg.ConfigError as err:
    raise WorkflowError(str(err)) from None

wildcard_constraints:
    ablation="|".join(sorted(config["ablations"])),
    task="|".join(sorted(config["tasks"])),
    table="|".join(sorted(config["tables"])) or "no-table",
    packing="nsp_pairs|contiguous",
    head="[a-z0-9_]+",
    step="final|step-[0-9]+",
    hp="[A-Za-z0-9.+_-]+",


def as_param(obj):
    """Params are canonical JSON: identical settings always compare equal, so no spurious reruns."""
    return canonical_json(obj)


def ablation_spec(wildcards):
    return as_param(cfg.resolve_ablation(config, wildcards.ablation))


def instances_of(wildcards):
    packing = cfg.resolve_ablation(config, wildcards.ablation)["packing"]
    return multiext(f"results/instances/{packing}/", "train.npz", "heldout.npz")


def corpus_source():
    return as_param({"corpus": config["corpus"], "world": config["world"]})


def task_source(wildcards):
    task = config["tasks"][wildcards.task]
    return as_param({"task": {k: task[k] for k in ("source", "n_train", "n_dev", "hub")}, "world": config["world"]})


def finetune_settings(wildcards):
    return as_param(cfg.finetune_settings(config, wildcards.task, wildcards.hp))


def restart_outputs():
    return [f"results/finetune/{{ablation}}/{{step}}/{{task}}/{{head}}/{{hp}}/seed{k}/metrics.json"
            for k in range(config["finetune"]["restarts"])]


def table_cells(wildcards):
    """The table's cells in config order (a list, so canonical JSON keeps the order)."""
    return as_param(cfg.table_cells(config, wildcards.table))


def table_metrics(wildcards):
    return [
        f"results/finetune/{r['ablation']}/{r['step']}/{r['task']}/{r['head']}/{r['hp']}/seed{k}/metrics.json"
        for r in cfg.finetune_runs(config, [wildcards.table])
        for k in range(config["finetune"]["restarts"])
    ]


def table_outputs(table):
    return [f"results/tables/{table}.{ext}" for ext in ("csv", "md", "tex", "provenance.json")] + [
        f"results/figures/{table}.png"
    ]


def all_table_outputs():
    return [path for table in sorted(config["tables"]) for path in table_outputs(table)]
