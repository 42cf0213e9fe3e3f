"""The plan: what a validated configuration asks to run, as the DAG's rules and tables need it.

Pure functions of a config that ``config.validate`` has checked and filled with defaults: the
complete spec of each pretraining run and its hash, the fine-tuning grid, the cells of every
table and figure, and the distinct jobs behind them. Plan objects are typed and frozen
(``GridPoint``, ``Cell``, ``FinetuneRun``, a fine-tuning job's ``FinetuneSettings``; a run's
``settings.AblationSpec``); what a job stores on disk (a run's spec, a fine-tuning job's
settings) stays a JSON document, which the job types again when it starts. Torch-free: every ``snakemake`` start imports this.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field

from .facts.head_kinds import HEAD_KINDS
from .facts.objectives import OBJECTIVES
from .schema import ConfigError, known, schema_defaults
from .settings import AblationSpec, TaskSettings
from .storage import stable_hash

FINAL_STEP = "final"
# Pretraining seed k >= 1 of ablation "x" is the run "x.seed<k>"; seed 0 keeps the ablation's own
# name, spec and hash, so pretrain.seeds: 1 is exactly the DAG (and every cache) it was before.
SEED_SUFFIX = ".seed"
PRETRAIN_METRICS = ("heldout_perplexity", "heldout_lm_accuracy", "heldout_nsp_accuracy")


@dataclass(frozen=True)
class GridPoint:
    """One fine-tuning setting of a task's grid; ``key`` names its results folder."""
    lr: float
    batch_size: int
    epochs: int
    key: str = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "key", hp_key(self.lr, self.batch_size, self.epochs))


@dataclass(frozen=True)
class Cell:
    """One (row, column) of a table, or (series, step) of a figure, and what fills it."""
    row: str
    column: str
    paper_row: str  # the paper's row whose number stands beside this one
    ablation: str  # a pretraining run (origin "pretrain") or an imported checkpoint (origin "checkpoint")
    origin: str
    spec_hash: str
    head: str
    step: str  # "final" or "step-<k>"
    source: str  # "finetune", or "pretrain" for a pretraining metric (perplexity)
    task: str | None
    metric: str
    split: str | None  # None: the task's first evaluation split
    # the pretraining runs behind the cell, one per pretraining seed, as (run name, spec hash);
    # empty for cells built by hand (tests): then (ablation, spec_hash) is the one run
    runs: tuple = ()

    def __post_init__(self):  # from JSON params: lists back to the tuples a frozen cell compares by
        object.__setattr__(self, "runs", tuple(tuple(r) for r in self.runs))

    def seed_runs(self) -> list[tuple[str, str]]:
        return [tuple(r) for r in self.runs] or [(self.ablation, self.spec_hash)]


@dataclass(frozen=True, order=True)
class FinetuneRun:
    """One fine-tuning job: every restart of one grid point of one (checkpoint, task, head)."""
    ablation: str
    step: str
    task: str
    head: str
    hp: str


@dataclass(frozen=True)
class CollapseRetry:
    """``finetune.collapse_retry``: a restart that collapsed (one class for every dev example) is
    trained again from the same seeds at a lower rate."""
    max_retries: int  # retries per collapsed restart; 0 = never retry
    lr_divisor: float  # each retry trains at the previous attempt's learning rate divided by this


@dataclass(frozen=True)
class FinetuneSettings:
    """One fine-tuning job's settings, typed: ``finetune:`` without its grids, the task's settings,
    the job's grid point. Every field's meaning and default: config.schema.yaml, ``finetune``.

    Built once per job from the validated config (``from_config``); the job receives ``params()``,
    the JSON document it always received, so Snakemake's params and the job's ``finetune_hash``
    (every metrics.json) do not change. Values stay as the config gives them (a ``0`` stays an
    int): the JSON, and so the hash, is the config's own.
    """
    restarts: int  # per grid point and pretraining seed: same checkpoint, other head init and data order
    seed: int  # base seed: restart k's init and data-order seeds derive from (seed, k)
    warmup_ratio: float  # share of steps in linear warmup
    weight_decay: float  # decoupled weight decay, not on biases and LayerNorm
    grad_clip: float  # global gradient-norm clip; 0 disables
    adam_betas: tuple[float, float]
    adam_eps: float
    dropout: float  # of the task head
    adam_bias_correction: bool  # False: BERT's original BertAdam
    eval_batch_size: int  # batch size of dev (and test) evaluation
    group_by_length: bool  # batch examples of similar length together
    cache_features: bool  # feature-based heads: the frozen encoder runs once per example
    precision: str  # as pretrain.precision
    collapse_retry: CollapseRetry
    task: TaskSettings  # tasks.<task> without its data keys: sequence lengths, SQuAD windows and answers, NER context
    hp: GridPoint

    @classmethod
    def from_config(cls, config: dict, task: str, head: str, hp: str) -> FinetuneSettings:
        finetune = {k: v for k, v in config["finetune"].items() if k not in ("grid", "feature_based_grid")}
        return cls(**{**finetune, "adam_betas": tuple(finetune["adam_betas"]),
                      "collapse_retry": CollapseRetry(**finetune["collapse_retry"]),
                      "task": TaskSettings.from_dict(config["tasks"][task]),
                      "hp": grid_point(config, task, head, hp)})

    def params(self) -> dict:
        """The job's JSON params: every field, nested dataclasses as dicts, the betas a list (as YAML gives them)."""
        return {**dataclasses.asdict(self), "adam_betas": list(self.adam_betas)}

    @classmethod
    def from_params(cls, params: dict) -> FinetuneSettings:
        """Back from ``params()`` (the job's side of Snakemake's params)."""
        hp = params["hp"]
        return cls(**{**params, "adam_betas": tuple(params["adam_betas"]),
                      "collapse_retry": CollapseRetry(**params["collapse_retry"]),
                      "task": TaskSettings(**params["task"]),
                      "hp": GridPoint(hp["lr"], hp["batch_size"], hp["epochs"])})


def split_run(run: str) -> tuple[str, int]:
    """A pretraining run's (ablation, seed index): "bert_base" -> ("bert_base", 0),
    "bert_base.seed2" -> ("bert_base", 2)."""
    ablation, _, index = run.partition(SEED_SUFFIX)
    if index and index.isdigit() and int(index) >= 1 and str(int(index)) == index:
        return ablation, int(index)
    return run, 0


def run_name(ablation: str, index: int) -> str:
    return ablation if index == 0 else f"{ablation}{SEED_SUFFIX}{index}"


def pretrain_seeds(config: dict) -> int:
    """How many pretraining runs (seeds) every ablation gets: ``pretrain.seeds``, at the top level
    or in world_recipe (on the built-in world). One count for all ablations: a fine-tuning job
    fine-tunes every seed's checkpoint (one process pays the imports once), so its outputs, the
    same for every ablation, are seeds x restarts."""
    return config.get("world_recipe", {}).get("pretrain", {}).get("seeds", config["pretrain"].get("seeds", 1)) \
        if config["corpus"]["source"] == "synthetic" else config["pretrain"].get("seeds", 1)


def job_restarts(config: dict) -> int:
    """Fine-tuning restarts of one job: each pretraining seed's checkpoint x finetune.restarts
    (restart k fine-tunes seed k // restarts; an imported checkpoint, its one model, all of them)."""
    return pretrain_seeds(config) * config["finetune"]["restarts"]


def seed_runs(config: dict, ablation: str) -> list[str]:
    """The pretraining runs of one ablation, seed 0 first (a checkpoint entry is its one run)."""
    if ablation in config.get("checkpoints", {}):
        return [ablation]
    return [run_name(ablation, k) for k in range(pretrain_seeds(config))]


def resolve_ablation(config: dict, name: str, check: bool = True) -> dict:
    """The complete, self-contained spec of one pretraining run: defaults + the ablation's overrides.

    ``name`` is an ablation (its seed 0) or one of its seed runs ("bert_base.seed2"): seed k adds
    k to pretrain.seed, so init, data order and masks all change, except an init_seed, data_seed
    or mask_seed the config sets apart, which stays fixed across seeds (to vary one factor only).
    ``pretrain.seeds`` says how many runs there are, not what one computes: no spec holds it.
    The spec is saved beside the checkpoint, and downstream jobs rebuild the model from it,
    never from today's config.
    """
    ablation_name, index = split_run(name)
    if check and ablation_name not in config["ablations"]:
        known("ablation", ablation_name, config["ablations"], "ablation", "config")
    if check and index >= pretrain_seeds(config):
        raise ConfigError(f"config: ablation '{ablation_name}' has {pretrain_seeds(config)} "
                          f"pretraining seed(s) (pretrain.seeds), so there is no run '{name}'.")
    ablation = config["ablations"][ablation_name]
    objective = OBJECTIVES[ablation["objective"]]
    world, tuned = world_layers(config, ablation_name)
    spec = {
        "name": name,
        "objective": objective.name,
        "packing": ablation.get("packing", objective.packings[0]),
        **{group: {**config[group], **world.get(group, {}), **tuned.get(group, {}), **ablation.get(group, {})}
           for group in ("model", "masking", "pretrain")},
    }
    spec["pretrain"].pop("seeds", None)
    spec["pretrain"]["seed"] += index
    spec["pretrain"]["save_steps"] = sorted(set(spec["pretrain"]["save_steps"]))
    return spec


def ablation_spec(config: dict, name: str) -> AblationSpec:
    """``resolve_ablation``'s document, typed: what a job or a report reads a run's settings from."""
    return AblationSpec.from_dict(resolve_ablation(config, name))


def world_layers(config: dict, name: str) -> tuple[dict, dict]:
    """The built-in world's tuning for ablation ``name``: (every ablation's, this one's) overrides
    from ``world_recipe``, or two empty layers when the corpus is not the generated world, so that
    a preset on real text never inherits rates tuned for the world."""
    if config["corpus"]["source"] != "synthetic":
        return {}, {}
    recipe = config.get("world_recipe", {})
    return recipe, recipe.get("ablations", {}).get(name, {})


def instance_settings(config: dict, max_seq_length: int) -> dict:
    """What the instances of one length are built with. ``nsp_negatives: document`` (the default)
    is left out: it is the only draw there was before the key existed, so instances built then
    keep their params and are not rebuilt for the key's sake."""
    settings = {**config["instances"], "max_seq_length": max_seq_length}
    if settings.get("nsp_negatives") == "document":
        del settings["nsp_negatives"]
    return settings


# Execution-only pretrain keys: how a run is carried out (micro-batching, how often it logs and
# saves its resumable state, TensorBoard), never what it computes. They are not part of a run's
# identity: its spec hash, its state key and its cached results stay the same when they change, so
# a run that ran out of memory resumes with more accumulation steps where it stopped. The hash
# sees them at these fixed values, the ones every hash was made with before they left the
# identity (the schema's defaults then), so no earlier run's hash moves.
EXECUTION_KEYS = {"accumulation_steps": 1, "log_every": 20, "state_every": 200, "tensorboard": True}
# Execution-only keys added after that, which no hash has ever seen: left out of the identity.
# torch.compile fuses kernels (float order, as accumulation changes it), never the computation.
# pretrain.health decides what the job does with a run that did not learn (warn or fail), not the run.
LATER_EXECUTION_KEYS = ("compile", "health")


def identity_spec(spec: dict) -> dict:
    """``spec`` with its execution-only pretrain keys at their fixed values (EXECUTION_KEYS) and
    the later ones (LATER_EXECUTION_KEYS) left out."""
    pretrain = {k: v for k, v in spec["pretrain"].items() if k not in LATER_EXECUTION_KEYS}
    return {**spec, "pretrain": {**pretrain, **EXECUTION_KEYS}}


def execution_settings(spec: dict) -> dict:
    """The execution-only pretrain keys of a resolved spec: what a job takes besides its identity."""
    return {key: spec["pretrain"][key] for key in (*EXECUTION_KEYS, *LATER_EXECUTION_KEYS)}


def spec_hash(config: dict, ablation: str) -> str:
    """The hash of the pretraining run this config asks for (or of the checkpoint entry it
    imports): results carry the hash of the run they came from, and a mismatch means they were
    made with another config."""
    if ablation in config.get("checkpoints", {}):
        return checkpoint_hash(config["checkpoints"][ablation])
    return ablation_hash(resolve_ablation(config, ablation))


def checkpoint_hash(entry: dict) -> str:
    """A checkpoint is identified by where it comes from (hub id and revision, or folder); the
    digests of its files are recorded beside it when it is imported."""
    return stable_hash({"checkpoint": {k: entry.get(k) for k in ("hub", "revision", "path")}})


def ablation_hash(spec: dict) -> str:
    """A run's identity: its spec without its name and with its execution-only keys fixed."""
    return stable_hash({k: v for k, v in identity_spec(spec).items() if k != "name"})


def hp_key(lr: float, batch_size: int, epochs: int) -> str:
    """Readable, unique directory name of a grid point, e.g. lr0.0001_bs32_ep3."""
    return f"lr{lr:g}_bs{batch_size}_ep{epochs}"


def grid_points(config: dict, task: str, head: str = "linear") -> list[GridPoint]:
    """The task's grid: schema default < finetune.grid < tasks.<task>.grid < (for a frozen,
    feature-based head) finetune.feature_based_grid."""
    default = schema_defaults("finetune")["grid"]
    grid = {**default, **config["finetune"]["grid"], **config["tasks"][task].get("grid", {})}
    if HEAD_KINDS[head].frozen:
        grid.update(config["finetune"]["feature_based_grid"])
    return [GridPoint(lr, bs, ep)
            for lr, bs, ep in itertools.product(sorted(grid["lr"]), sorted(grid["batch_size"]), sorted(grid["epochs"]))]


def grid_point(config: dict, task: str, head: str, key: str) -> GridPoint:
    for point in grid_points(config, task, head):
        if point.key == key:
            return point
    raise ConfigError(f"config: no grid point '{key}' for task '{task}' with head '{head}'.")


def report_names(config: dict) -> list[str]:
    """Every table and figure the config defines, sorted."""
    return sorted([*config["tables"], *config["figures"]])


def checkpoint_steps(config: dict, ablation: str) -> list[int]:
    """The steps at which an ablation leaves a checkpoint: its save_steps, then its last step."""
    train = resolve_ablation(config, ablation)["pretrain"]
    return sorted({*train["save_steps"], train["steps"]})


def checkpoint_name(config: dict, ablation: str, step: int) -> str:
    return FINAL_STEP if step == resolve_ablation(config, ablation)["pretrain"]["steps"] else f"step-{step}"


def table_cells(config: dict, name: str) -> list[Cell]:
    """Every (row, column) of a table or figure with what fills it, in config order.

    A figure's rows are its series and its columns the checkpoint steps (as strings).
    """
    if name in config["figures"]:
        figure = config["figures"][name]
        return [Cell(row=label, column=str(step), paper_row=label, ablation=ablation, origin="pretrain",
                     spec_hash=spec_hash(config, ablation), head=figure["head"],
                     step=checkpoint_name(config, ablation, step), source="finetune", task=figure["task"],
                     metric=figure["metric"], split=None, runs=_runs(config, ablation))
                for label, ablation in figure["series"].items() for step in checkpoint_steps(config, ablation)]
    spec = config["tables"][name]
    cells = []
    for row_label, row in spec["rows"].items():
        run = row.get("ablation") or row["checkpoint"]
        if "ablation" in row:
            run_hash = spec_hash(config, run)
        else:
            known("checkpoint", run, config["checkpoints"], f"tables.{name}.rows.{row_label}.checkpoint", "config")
            run_hash = checkpoint_hash(config["checkpoints"][run])
        for col_label, column in spec["columns"].items():
            cells.append(Cell(
                row=row_label, column=col_label, paper_row=row.get("paper_row", row_label),
                ablation=run, origin="pretrain" if "ablation" in row else "checkpoint", spec_hash=run_hash,
                head=column.get("head") or row.get("head", "linear"), step=row.get("step", FINAL_STEP),
                source=column.get("source", "finetune"), task=column.get("task"), metric=column["metric"],
                split=column.get("split"), runs=_runs(config, run)))
    return cells


def _runs(config: dict, ablation: str) -> tuple:
    return tuple((run, spec_hash(config, run)) for run in seed_runs(config, ablation))


def finetune_runs(config: dict, names: list[str] | None = None) -> list[FinetuneRun]:
    """The distinct fine-tuning jobs (one per grid point, every pretraining seed's checkpoint in
    it) that the given tables/figures need, sorted."""
    return sorted({FinetuneRun(cell.ablation, cell.step, cell.task, cell.head, point.key)
                   for name in (report_names(config) if names is None else names)
                   for cell in table_cells(config, name) if cell.source == "finetune"
                   for point in grid_points(config, cell.task, cell.head)})


def pretrain_runs(config: dict, names: list[str] | None = None) -> list[str]:
    """The pretraining runs (every seed of every ablation) the given tables/figures need, sorted."""
    return sorted({run for name in (report_names(config) if names is None else names)
                   for cell in table_cells(config, name) if cell.origin == "pretrain" for run, _ in cell.seed_runs()})


def checkpoint_runs(config: dict, names: list[str] | None = None) -> list[str]:
    """The checkpoints (config's checkpoints:) the given tables need, sorted."""
    return sorted({cell.ablation for name in (report_names(config) if names is None else names)
                   for cell in table_cells(config, name) if cell.origin == "checkpoint"})


def finetune_settings(config: dict, task: str, head: str, hp: str) -> dict:
    """Everything a fine-tuning job depends on besides its checkpoint and data: its params, the
    JSON document of its ``FinetuneSettings``."""
    return FinetuneSettings.from_config(config, task, head, hp).params()
