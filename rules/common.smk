# Configuration is validated (schema + cross-field rules) at parse time, before any job runs,
# and every helper that turns it into paths or params lives here.
import json

from bert_ablation import config as cfg
from bert_ablation import corpus
from bert_ablation.task_files import input_files as local_task_files
from bert_ablation.tasks import TaskDataError
from bert_ablation.storage import canonical_json

try:
    config = cfg.validate(config, source="config")
except cfg.ConfigError as err:
    raise WorkflowError(str(err)) from None

wildcard_constraints:
    ablation="|".join(sorted([*config["ablations"], *config["checkpoints"]])),
    checkpoint="|".join(sorted(config["checkpoints"])) or "no-checkpoint",
    task="|".join(sorted(config["tasks"])),
    table="|".join(cfg.report_names(config)) or "no-table",
    packing="nsp_pairs|contiguous",
    length="[0-9]+",
    head="[a-z0-9_]+",
    step="final|step-[0-9]+",
    hp="[A-Za-z0-9.+_-]+",


def as_param(obj):
    """Params are canonical JSON: identical settings always compare equal, so no spurious reruns."""
    return canonical_json(obj)


def ablation_spec(wildcards):
    return as_param(cfg.resolve_ablation(config, wildcards.ablation))


def instance_settings(wildcards):
    return as_param({**config["instances"], "max_seq_length": int(wildcards.length)})


def pretrain_instances(wildcards):
    """The instances a run trains on; with a short-sequence phase (the paper's 90% of steps at
    length 128), also those at that length."""
    spec = cfg.resolve_ablation(config, wildcards.ablation)

    def at(length):
        return multiext(f"results/instances/{spec['packing']}/len{length}/", "train.npz", "heldout.npz")

    inputs = {"instances": at(config["instances"]["max_seq_length"])}
    if spec["pretrain"]["short_seq_steps"]:
        inputs["short_instances"] = at(spec["pretrain"]["short_seq_length"])
    return inputs


def corpus_source():
    return as_param({"corpus": config["corpus"], "world": config["world"]})


def corpus_files():
    """Local corpus files (text, jsonl sources): inputs, so that an edited file rebuilds the corpus."""
    try:
        return corpus.input_files(config)
    except corpus.CorpusError as err:
        raise WorkflowError(str(err)) from None


def task_files(wildcards):
    """A local task's files: inputs, so that an edited file rebuilds the task."""
    settings = config["tasks"][wildcards.task]
    if settings["source"] != "local":
        return []
    try:
        return local_task_files(wildcards.task, settings)
    except TaskDataError as err:
        raise WorkflowError(str(err)) from None


def task_source(wildcards):
    task = config["tasks"][wildcards.task]
    return as_param({"task": {k: task[k] for k in ("source", "n_train", "n_dev", "hub", "path", "files")},
                     "world": config["world"]})


def pretrain_spec_hash(wildcards):
    return cfg.spec_hash(config, wildcards.ablation)


def finetune_settings(wildcards):
    return as_param(cfg.finetune_settings(config, wildcards.task, wildcards.head, wildcards.hp))


def restart_outputs():
    return [f"results/finetune/{{ablation}}/{{step}}/{{task}}/{{head}}/{{hp}}/seed{k}/metrics.json"
            for k in range(config["finetune"]["restarts"])]


def table_cells(wildcards):
    """The cells in config order (a list, so canonical JSON keeps the order)."""
    return as_param(cfg.table_cells(config, wildcards.table))


def table_options(wildcards):
    name = wildcards.table
    if name in config["figures"]:
        return as_param({"kind": "figure", "model_columns": False})
    table = config["tables"][name]
    return as_param({"kind": "table", "model_columns": table["model_columns"], "paper_table": table["paper_table"]})


def finetune_metrics(names):
    return [
        f"results/finetune/{r['ablation']}/{r['step']}/{r['task']}/{r['head']}/{r['hp']}/seed{k}/metrics.json"
        for r in cfg.finetune_runs(config, names)
        for k in range(config["finetune"]["restarts"])
    ]


def pretrain_metrics(names):
    return [f"results/pretrain/{a}/metrics.json" for a in cfg.pretrain_runs(config, names)]


def table_inputs(wildcards):
    # A checkpoint row's metrics.json (its shape, source and digests) stands where a pretraining run's would.
    return {"finetune": finetune_metrics([wildcards.table]),
            "pretrain": pretrain_metrics([wildcards.table]) + checkpoint_metrics([wildcards.table])}


def checkpoint_metrics(names):
    return [f"results/checkpoints/{c}/metrics.json" for c in cfg.checkpoint_runs(config, names)]


def finetune_checkpoints(wildcards):
    """The folder of checkpoints a fine-tuning job reads: a pretraining run's, or an imported one's."""
    if wildcards.ablation in config["checkpoints"]:
        return f"results/checkpoints/{wildcards.ablation}/checkpoints"
    return f"results/pretrain/{wildcards.ablation}/checkpoints"


def checkpoint_source(wildcards):
    return as_param(config["checkpoints"][wildcards.checkpoint])


def checkpoint_files(wildcards):
    """A local checkpoint's files: inputs, so that a replaced model is imported again."""
    path = config["checkpoints"][wildcards.checkpoint]["path"]
    if path is None:
        return []
    if not os.path.isdir(path):
        raise WorkflowError(f"checkpoints.{wildcards.checkpoint}.path: '{path}' is not a folder; give the folder "
                            "of an HF checkpoint (config.json, weights, tokenizer files).")
    return sorted(os.path.join(path, f) for f in os.listdir(path) if os.path.isfile(os.path.join(path, f)))


def table_outputs(name):
    return [f"results/tables/{name}.{ext}" for ext in ("csv", "md", "tex", "provenance.json")] + [
        f"results/figures/{name}.{ext}" for ext in ("png", "pdf")
    ]


def provenance_files():
    return [f"results/tables/{name}.provenance.json" for name in cfg.report_names(config)]


def pretrain_logs():
    return {a: f"results/pretrain/{a}/log.csv" for a in cfg.pretrain_runs(config)}


def claims_settings():
    return as_param({k: v for k, v in config["claims"].items() if k != "enabled"})


def all_outputs():
    outputs = [path for name in cfg.report_names(config) for path in table_outputs(name)]
    if cfg.report_names(config):
        outputs += rules.loss_curves.output
    if config["claims"]["enabled"] and cfg.report_names(config):
        outputs += rules.claims.output
    return outputs
