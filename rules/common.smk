# Configuration is validated (schema + cross-field rules) at parse time, before any job runs,
# and every helper that turns it into paths or params lives here.
import dataclasses
import json
import re

from bert_ablation import config as cfg
from bert_ablation import estimate as cost
from bert_ablation import plan, rehearsal, warm
from bert_ablation.data import corpus
from bert_ablation.data.task_files import input_files as local_task_files
from bert_ablation.facts.tasks import TaskDataError
from bert_ablation.storage import canonical_json

try:
    config = cfg.validate(config, source="config")
    # a real-data preset that redefines an ablation states all of it (config.check_redefined_ablations)
    cfg.check_redefined_ablations([os.path.join(workflow.basedir, "config.yaml"),
                                   *map(str, workflow.overwrite_configfiles or [])], config)
    # and a top-level rate (say) changed from config.yaml's is no silent no-op on the built-in world
    cfg.check_shadowed_by_world(config, os.path.join(workflow.basedir, "config.yaml"), "config",
                                [str(f) for f in workflow.overwrite_configfiles or []])
    # With rehearse: true, every rule below sees the rehearsal's budgets at the real shapes (its
    # jobs' cluster requests too); the rehearsal rule extrapolates to the full run, which it reads
    # from full_config.
    full_config = config
    config = rehearsal.rehearse(config)
except cfg.ConfigError as err:
    raise WorkflowError(str(err)) from None

# Warm start (bert_ablation.warm): a local run's jobs fork from one process that imported torch
# and transformers once, instead of each paying ~4-7 s for it. Not on a cluster (each job runs
# on its own node), nor in a rehearsal (its jobs' peak memory must be their own), nor with
# --software-deployment-method (the rules' conda environments, not this interpreter, run the jobs).
WARM = {}


onstart:
    if (config["warm_start"] and not config["rehearse"] and workflow.local_exec and workflow.is_main_process
            and not workflow.deployment_settings.deployment_method):
        WARM["server"] = warm.start(os.getcwd(), "logs/warm_server.log")


onsuccess:
    warm.stop(WARM.pop("server", None))


onerror:
    warm.stop(WARM.pop("server", None))


wildcard_constraints:
    # an ablation's pretraining runs (seed 0 under its own name, then <name>.seed<k>) or a checkpoint
    ablation="|".join(map(re.escape, sorted([*(run for a in config["ablations"] for run in plan.seed_runs(config, a)),
                                             *config["checkpoints"]]))),
    checkpoint="|".join(sorted(config["checkpoints"])) or "no-checkpoint",
    task="|".join(sorted(config["tasks"])),
    table="|".join(plan.report_names(config)) or "no-table",
    packing="nsp_pairs|contiguous",
    length="[0-9]+",
    shard="[0-9]+",
    head="[a-z0-9_]+",
    step="final|step-[0-9]+",
    hp="[A-Za-z0-9.+_-]+",


# Every result path, written once: rules declare their outputs with these and helpers expand
# them; a placeholder not given to path() stays a wildcard.
PATHS = {
    "corpus": "results/corpus/shard-{shard}",
    "word_counts": "results/word_counts/shard-{shard}.tsv",
    "tokenizer": "results/tokenizer",
    "instances": "results/instances/{packing}/len{length}/shard-{shard}",
    "tasks": "results/tasks/{task}",
    "pretrain": "results/pretrain/{ablation}",
    "imported": "results/checkpoints/{checkpoint}",
    "finetune": "results/finetune/{ablation}/{step}/{task}/{head}/{hp}/seed{restart}/metrics.json",
    "table": "results/tables/{table}",
    "figure": "results/figures/{table}",
    # the stems below take their extensions (.png/.pdf, .csv/.md, .md/.json) where the rule names them
    "finetune_curves": "results/figures/curves/{ablation}/{step}/{task}/{head}/{hp}",
    "loss_curves": "results/figures/pretraining_loss",
    "claims": "results/claims",
    "estimate": "results/estimate",
    "rehearsal": "results/rehearsal",
}

# Each rule's log and benchmark file under logs/, keyed by the rule's name (<stem>.log, <stem>.benchmark.tsv;
# log_path, benchmark_path). rehearsal_report.report reads a job's rule from its benchmark's first folder.
LOGS = {
    "corpus": "corpus/shard-{shard}",
    "word_counts": "word_counts/shard-{shard}",
    "tokenizer": "tokenizer",
    "instances": "instances/{packing}-len{length}-shard-{shard}",
    "tasks": "tasks/{task}",
    "pretrain": "pretrain/{ablation}",
    "import_checkpoint": "checkpoints/{checkpoint}",
    "finetune": "finetune/{ablation}/{step}/{task}/{head}/{hp}",
    "finetune_curves": "figures/curves/{ablation}/{step}/{task}/{head}/{hp}",
    "table": "tables/{table}",
    "loss_curves": "tables/pretraining_loss",
    "claims": "claims",
    "estimate": "estimate",
    "rehearsal": "rehearsal",
}

# Work that must survive a rerun lives outside the declared outputs, which Snakemake deletes before
# rerunning a job: each run's resumable state, and pretraining's TensorBoard events (a log).
STATE = {
    "pretrain": "state/pretrain/{ablation}",
    "finetune": "state/finetune/{ablation}/{step}/{task}/{head}/{hp}",
    "tensorboard": "logs/tensorboard/pretrain/{ablation}",
}


class _KeepWildcards(dict):
    def __missing__(self, key):
        return f"{{{key}}}"


def path(name, *inside, **values):
    """PATHS[name] with ``values`` filled in, and ``inside`` (file or folder names) below it."""
    return os.path.join(PATHS[name].format_map(_KeepWildcards(values)), *inside)


def state_path(name):
    """A run's folder that outlives its declared outputs (STATE; its wildcards kept)."""
    return STATE[name]


def log_path(rule):
    """The rule's log file (its wildcards kept)."""
    return f"logs/{LOGS[rule]}.log"


def benchmark_path(rule):
    """The rule's Snakemake benchmark file, beside its log."""
    return f"logs/{LOGS[rule]}.benchmark.tsv"


def as_param(obj):
    """Params are canonical JSON: identical settings always compare equal, so no spurious reruns."""
    return canonical_json(obj)


def ablation_spec(wildcards):
    """The run's identity, its execution-only keys at fixed values (plan.EXECUTION_KEYS): a changed
    accumulation_steps or log_every is no changed param, so Snakemake neither reruns a finished run
    nor the fine-tuning behind it. The job reads the actual values from the config itself
    (workflow_scripts/pretrain.py)."""
    return as_param(plan.identity_spec(plan.resolve_ablation(config, wildcards.ablation)))


def instance_settings(wildcards):
    settings = plan.instance_settings(config, int(wildcards.length))
    if settings["static_masking"]:  # the selection is drawn with the instances
        settings["masking"] = {k: config["masking"][k] for k in ("probability", "max_predictions")}
    return as_param(settings)


def pretrain_instances(wildcards):
    """The instances a run trains on; with a short-sequence phase (the paper's 90% of steps at
    length 128), also those at that length."""
    spec = plan.resolve_ablation(config, wildcards.ablation)

    def at(length):
        return [path("instances", packing=spec["packing"], length=length, shard=k) for k in corpus_shards()]

    inputs = {"instances": at(config["instances"]["max_seq_length"])}
    if spec["pretrain"]["short_seq_steps"]:
        inputs["short_instances"] = at(spec["pretrain"]["short_seq_length"])
    return inputs


def mirrored(param):
    """``param`` with the hub_mirror it is read from, where one is set (a mirror's copy is another
    source: switching between it and the hub rebuilds what was read)."""
    return {**param, "hub_mirror": config["hub_mirror"]} if config["hub_mirror"] else param


def corpus_source():
    return as_param(mirrored({"corpus": config["corpus"], "world": config["world"]}))


def corpus_shards():
    return range(config["corpus"]["shards"])


def corpus_shard_dirs():
    return [path("corpus", shard=k) for k in corpus_shards()]


def corpus_files(wildcards):
    """A shard's local corpus files (text, jsonl sources): inputs, so that an edited file rebuilds
    that shard only."""
    try:
        return corpus.input_files(config, corpus.Shard(int(wildcards.shard), config["corpus"]["shards"]))
    except corpus.CorpusError as err:
        raise WorkflowError(str(err)) from None


def check_corpus_shards():
    """A shard count the local files cannot fill is reported when the DAG is built."""
    try:
        for k in corpus_shards():
            corpus.input_files(config, corpus.Shard(k, config["corpus"]["shards"]))
    except corpus.CorpusError as err:
        raise WorkflowError(str(err)) from None


check_corpus_shards()


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
    # the example caps only when set: a run without them keeps the params (and results) it had
    caps = {k: task[k] for k in ("max_train_examples", "max_eval_examples") if task[k] is not None}
    return as_param({"task": mirrored({**{k: task[k] for k in ("source", "n_train", "n_dev", "hub", "path", "files")},
                                       **caps}),
                     "world": config["world"]})


def pretrain_spec_hash(wildcards):
    """Per checkpoint a fine-tuning job reads (one per pretraining seed): the run's spec hash."""
    return [plan.spec_hash(config, run) for run in plan.seed_runs(config, wildcards.ablation)]


# Cluster requests sized by the plan (bert_ablation.estimate: the job's estimated FLOPs at
# estimate.mfu / finetune_mfu of estimate.peak_tflops, x estimate.request_margin; host memory for
# its model, data and cached features; a data stage's runtime from its share of the corpus at the
# stages' measured rates), times Snakemake's attempt: a retried job asks for 2x, 3x.
# Partitions and accounts stay in the profile (profiles/slurm).
_requests = {}


def _request(kind, key):
    if (kind, key) not in _requests:
        _requests[kind, key] = (cost.pretrain_request(config, key) if kind == "pretrain" else
                                cost.data_request(config, key) if kind == "data" else
                                cost.finetune_request(config, plan.FinetuneRun(*key)))
    return _requests[kind, key]


def data_request(rule_name):
    """A corpus data stage's runtime: its share of the corpus at the stages' measured rates."""
    return lambda wildcards, attempt: _request("data", rule_name)["runtime"] * attempt


def pretrain_request(name):
    return lambda wildcards, attempt: _request("pretrain", wildcards.ablation)[name] * attempt


def finetune_request(name):
    def request(wildcards, attempt):
        key = (wildcards.ablation, wildcards.step, wildcards.task, wildcards.head, wildcards.hp)
        return _request("finetune", key)[name] * attempt

    return request


def finetune_settings(wildcards):
    return as_param(plan.finetune_settings(config, wildcards.task, wildcards.head, wildcards.hp))


def restart_outputs():
    # every pretraining seed's restarts: seed s writes restarts s x restarts .. (s + 1) x restarts - 1
    return [path("finetune", restart=k) for k in range(plan.job_restarts(config))]


def table_cells(wildcards):
    """The cells in config order (a list, so canonical JSON keeps the order)."""
    return as_param(plan.table_cells(config, wildcards.table))


def table_options(wildcards):
    name = wildcards.table
    if name in config["figures"]:
        return as_param({"kind": "figure", "model_columns": False, "paper_table": config["figures"][name]["paper_table"]})
    table = config["tables"][name]
    return as_param({"kind": "table", "model_columns": table["model_columns"], "paper_table": table["paper_table"]})


def finetune_metrics(names):
    return [
        path("finetune", **dataclasses.asdict(run), restart=k)
        for run in plan.finetune_runs(config, names)
        for k in range(plan.job_restarts(config))
    ]


def pretrain_metrics(names):
    return [path("pretrain", "metrics.json", ablation=a) for a in plan.pretrain_runs(config, names)]


def table_inputs(wildcards):
    # A checkpoint row's metrics.json (its shape, source and digests) stands where a pretraining run's would.
    return {"finetune": finetune_metrics([wildcards.table]),
            "pretrain": pretrain_metrics([wildcards.table]) + checkpoint_metrics([wildcards.table])}


def checkpoint_metrics(names):
    return [path("imported", "metrics.json", checkpoint=c) for c in plan.checkpoint_runs(config, names)]


def finetune_checkpoints(wildcards):
    """The folder of checkpoints a fine-tuning job reads: a pretraining run's, or an imported one's."""
    if wildcards.ablation in config["checkpoints"]:
        return [path("imported", "checkpoints", checkpoint=wildcards.ablation)]
    return [path("pretrain", "checkpoints", ablation=run) for run in plan.seed_runs(config, wildcards.ablation)]


def checkpoint_source(wildcards):
    entry = config["checkpoints"][wildcards.checkpoint]
    return as_param(mirrored(entry) if entry["hub"] and not entry["path"] else entry)


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
    return [f"{path('table', table=name)}.{ext}" for ext in ("csv", "md", "tex", "provenance.json")] + [
        f"{path('figure', table=name)}.{ext}" for ext in ("png", "pdf")
    ]


def provenance_files():
    return [f"{path('table', table=name)}.provenance.json" for name in plan.report_names(config)]


def pretrain_logs():
    return {a: path("pretrain", "log.csv", ablation=a) for a in plan.pretrain_runs(config)}


def claims_settings():
    return as_param({k: v for k, v in config["claims"].items() if k != "enabled"})


def all_outputs(rehearsal=True):
    outputs = [path for name in plan.report_names(config) for path in table_outputs(name)]
    if rehearsal and config["rehearse"]:
        outputs += rules.rehearsal.output
    if plan.report_names(config):
        outputs += rules.loss_curves.output
    if config["claims"]["enabled"] and plan.report_names(config):
        outputs += rules.claims.output
    return outputs


# The rehearsal report compares each rule's measured needs with what it requests.
def rule_resources():
    """Each rule's own resources (values; a function of the job stays None): what a profile
    that does not set a rule's resources requests."""
    names = ("corpus", "word_counts", "tokenizer", "instances", "tasks", "import_checkpoint", "pretrain", "finetune")
    own = {}
    for name in names:
        resources = getattr(rules, name).rule.resources
        own[name] = {key: (None if resources[key].is_evaluable() else resources[key].value)
                     for key in ("mem_mb", "runtime", "gpu") if key in resources}
    return own
