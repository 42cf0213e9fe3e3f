"""Load, validate and resolve the workflow configuration.

Two layers of checks, both before any compute: the JSON schema (types, ranges, unknown keys,
defaults filled in) and the cross-field rules a schema cannot express (hidden divisible by
heads, a masking mix that sums to 1, names that must exist in a registry, tables that point
at defined ablations). Every error names the offending key and says how to fix it.
"""

from __future__ import annotations

import copy
import difflib
import functools
import itertools
from importlib import resources

import jsonschema
import yaml

from .storage import stable_hash

FINAL_STEP = "final"
PRETRAIN_METRICS = ("heldout_perplexity", "heldout_lm_accuracy", "heldout_nsp_accuracy")


class ConfigError(ValueError):
    """A configuration problem, phrased for the user: where, what, and how to fix it."""


@functools.lru_cache(maxsize=1)
def schema() -> dict:
    """The JSON schema (cached; treat as read-only)."""
    return yaml.safe_load(resources.files(__package__).joinpath("config.schema.yaml").read_text())


def _with_defaults(validator_class):
    """A validator that fills in each property's default before checking it (as Snakemake's does)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema_):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema_)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _dotted(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _explain(error: jsonschema.ValidationError, source: str) -> str:
    where = _dotted(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in allowed]
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, allowed, n=1)
            hints.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        return (f"{source}: unknown key {', '.join(hints)} under {where}. "
                f"Allowed keys: {', '.join(allowed)}.")
    description = error.schema.get("description", "") if isinstance(error.schema, dict) else ""
    hint = f" ({description})" if description else ""
    return f"{source}: {where}: {error.message}{hint}"


def validate(config: dict, source: str = "config") -> dict:
    """Return a validated copy of ``config`` with every default filled in."""
    config = copy.deepcopy(config)
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("\n".join(_explain(e, source) for e in errors))
    # Fill defaults in the nested objects that the schema leaves open (tasks, table rows).
    task_schema = schema()["definitions"]["task"]
    for name in _table_tasks(config):
        config["tasks"].setdefault(name, {})
    for name, task in config["tasks"].items():
        _fill(task, task_schema)
    for entry in config["checkpoints"].values():
        _fill(entry, schema()["properties"]["checkpoints"]["additionalProperties"])
    _check_semantics(config, source)
    return config


def _fill(instance: dict, schema_: dict) -> None:
    for key, sub in schema_.get("properties", {}).items():
        if "default" in sub and key not in instance:
            instance[key] = copy.deepcopy(sub["default"])


def load(path: str, overrides: list[str] | None = None) -> dict:
    """Read a YAML config file (and optional further files merged on top) and validate it."""
    merged: dict = {}
    for file in [path, *(overrides or [])]:
        try:
            with open(file, encoding="utf-8") as handle:
                data = yaml.safe_load(handle) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{file}: not valid YAML: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: the top level must be a mapping of keys, got {type(data).__name__}.")
        merged = deep_merge(merged, data)
    return validate(merged, source=", ".join([path, *(overrides or [])]))


def deep_merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# --- cross-field rules ----------------------------------------------------------------------

def _known(kind: str, name: str, known, where: str, source: str) -> None:
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"{source}: {where}: unknown {kind} '{name}'. Known: {', '.join(sorted(known))}.{hint}")


def _check_semantics(config: dict, source: str) -> None:
    from .data.tasks import TASKS
    from .data.world import WORLD_TASKS
    from .models.objectives import OBJECTIVES

    schema_defs = schema()["definitions"]
    for name in config["ablations"]:
        where = f"ablations.{name}"
        ablation = config["ablations"][name]
        _known("objective", ablation["objective"], OBJECTIVES, f"{where}.objective", source)
        for group in ("model", "masking", "pretrain"):
            for key in ablation.get(group, {}):
                allowed = schema_defs[group]["properties"]
                if key not in allowed:
                    _known(f"{group} key", key, allowed, f"{where}.{group}", source)
        spec = resolve_ablation(config, name, check=False)
        try:
            jsonschema.Draft202012Validator(schema_defs["model"]).validate(spec["model"])
            jsonschema.Draft202012Validator(schema_defs["masking"]).validate(spec["masking"])
            jsonschema.Draft202012Validator(schema_defs["pretrain"]).validate(spec["pretrain"])
        except jsonschema.ValidationError as err:
            raise ConfigError(f"{source}: {where}: {_dotted(err.absolute_path)}: {err.message}") from None
        objective = OBJECTIVES[spec["objective"]]
        if spec["packing"] not in objective.packings:
            raise ConfigError(
                f"{source}: {where}.packing: objective '{objective.name}' cannot use packing "
                f"'{spec['packing']}' (allowed: {', '.join(objective.packings)}).")
        model = spec["model"]
        if model["hidden"] % model["heads"]:
            raise ConfigError(
                f"{source}: {where}: model.hidden={model['hidden']} is not divisible by "
                f"model.heads={model['heads']}; pick heads that divide the hidden size.")
        if model["max_position_embeddings"] < config["instances"]["max_seq_length"]:
            raise ConfigError(
                f"{source}: {where}: model.max_position_embeddings={model['max_position_embeddings']} "
                f"is shorter than instances.max_seq_length={config['instances']['max_seq_length']}.")
        mix = spec["masking"]
        total = mix["mask"] + mix["same"] + mix["random"]
        if abs(total - 1.0) > 1e-6:
            raise ConfigError(
                f"{source}: {where}: masking mask+same+random = {total:g}, must be 1 "
                f"(e.g. 0.8/0.1/0.1 as in the paper).")
        train = spec["pretrain"]
        if train["steps"] and train["short_seq_steps"] and not (train["short_seq_steps"] < train["steps"] and
                                             train["short_seq_length"] < config["instances"]["max_seq_length"]):
            raise ConfigError(
                f"{source}: {where}: pretrain.short_seq_steps={train['short_seq_steps']} at short_seq_length="
                f"{train['short_seq_length']} needs fewer steps than pretrain.steps={train['steps']} and a length "
                f"below instances.max_seq_length={config['instances']['max_seq_length']} (or short_seq_steps: 0).")
        if config["instances"]["static_masking"] and not objective.causal:
            changed = [k for k in ("probability", "max_predictions") if mix[k] != config["masking"][k]]
            if changed:
                raise ConfigError(
                    f"{source}: {where}: masking.{changed[0]} is drawn with the instances under "
                    f"instances.static_masking, so it cannot differ per ablation; set it at the top-level "
                    f"masking, or use dynamic masking (instances.static_masking: false).")
        if train["batch_size"] % train["accumulation_steps"]:
            raise ConfigError(
                f"{source}: {where}: pretrain.accumulation_steps={train['accumulation_steps']} does not divide "
                f"pretrain.batch_size={train['batch_size']}; pick micro-batches of equal size.")
        bad_steps = [s for s in spec["pretrain"]["save_steps"] if s > spec["pretrain"]["steps"]]
        if bad_steps:
            raise ConfigError(
                f"{source}: {where}: pretrain.save_steps {bad_steps} exceed pretrain.steps="
                f"{spec['pretrain']['steps']}.")
    for name, task in config["tasks"].items():
        _known("task", name, TASKS, f"tasks.{name}", source)
        if task["source"] == "world" and name not in WORLD_TASKS:
            raise ConfigError(f"{source}: tasks.{name}.source: the built-in world has no '{name}' task (it has "
                              f"{', '.join(WORLD_TASKS)}); use source: hub (datasets.load_dataset) or local "
                              "(the task's files).")
        if task["source"] == "local" and not task["path"]:
            raise ConfigError(f"{source}: tasks.{name}: source 'local' needs a path (the folder of the task's files).")
        # The fewest context tokens a window holds: [CLS] question [SEP] context [SEP] with the longest
        # question. An overlap that long panics HF's tokenizer (its windows would never advance); a
        # step that long leaves consecutive windows with nothing in common.
        room = task["max_seq_length"] - task["max_query_length"] - 3
        if TASKS[name].kind == "span" and task["doc_stride"] >= room:
            raise ConfigError(
                f"{source}: tasks.{name}.doc_stride={task['doc_stride']} must be below max_seq_length - "
                f"max_query_length - 3 = {task['max_seq_length']} - {task['max_query_length']} - 3 = {room}, the "
                "context tokens of a window with the longest question; lower doc_stride or max_query_length, "
                "or raise max_seq_length.")
    duplicated = sorted(set(config["tables"]) & set(config["figures"]))
    if duplicated:
        raise ConfigError(f"{source}: {', '.join(duplicated)} is both a table and a figure; rename one.")
    for name, figure in config["figures"].items():
        where = f"figures.{name}"
        _known("task", figure["task"], config["tasks"], f"{where}.task", source)
        _known("metric", figure["metric"], TASKS[figure["task"]].metrics, f"{where}.metric", source)
        steps = set()
        for label, ablation in figure["series"].items():
            _known("ablation", ablation, config["ablations"], f"{where}.series.{label}", source)
            steps.add(tuple(checkpoint_steps(config, ablation)))
        if len(steps) > 1:
            raise ConfigError(f"{source}: {where}: the series' ablations save different steps {sorted(steps)}; "
                              "give them the same pretrain.steps and pretrain.save_steps.")
    _check_checkpoints(config, source)
    for name in report_names(config):
        for cell in table_cells(config, name):
            _check_cell(config, cell, f"{'figures' if name in config['figures'] else 'tables'}.{name}", source)


def _check_cell(config: dict, cell: dict, where: str, source: str) -> None:
    """One table cell. A checkpoint row (a released or local model) gets the checks that need no
    loading; its shape (e.g. the layers a feature-based head reads) is checked when it is
    imported and fine-tuned."""
    from .data.tasks import TASKS
    from .models.head_kinds import HEAD_KINDS

    row_where, column_where = f"{where}.rows.{cell['row']}", f"{where}.columns.{cell['column']}"
    checkpoint = cell["origin"] == "checkpoint"
    if checkpoint:
        _known("checkpoint", cell["ablation"], config["checkpoints"], f"{row_where}.checkpoint", source)
        if cell["source"] == "pretrain":
            raise ConfigError(f"{source}: {column_where}: a pretraining metric needs a pretraining run; row "
                              f"'{cell['row']}' is checkpoint '{cell['ablation']}' (give the row an ablation, or "
                              "drop the column from this table).")
        if cell["step"] != FINAL_STEP:
            raise ConfigError(f"{source}: {row_where}.step: a checkpoint has one state, 'final' "
                              f"(got '{cell['step']}').")
    else:
        _known("ablation", cell["ablation"], config["ablations"], f"{row_where}.ablation", source)
        if cell["source"] == "pretrain":
            _known("pretraining metric", cell["metric"], PRETRAIN_METRICS, f"{column_where}.metric", source)
            return
    if not cell["task"]:
        raise ConfigError(f"{source}: {column_where}: a fine-tuning column needs a task (or source: pretrain).")
    _known("task", cell["task"], TASKS, f"{column_where}.task", source)
    task = TASKS[cell["task"]]
    _known("metric", cell["metric"], task.metrics, f"{column_where}.metric", source)
    if cell["split"] is not None:
        _known("split", cell["split"], task.eval_splits, f"{column_where}.split", source)
    _known("head", cell["head"], HEAD_KINDS, f"{row_where}.head", source)
    if checkpoint:
        return
    spec = resolve_ablation(config, cell["ablation"])
    head = HEAD_KINDS[cell["head"]]
    if head.frozen and spec["model"]["layers"] < head.min_layers():
        raise ConfigError(
            f"{source}: {row_where}: head '{cell['head']}' needs an encoder with at least {head.min_layers()} "
            f"layers; ablation '{cell['ablation']}' has {spec['model']['layers']}.")
    positions = spec["model"]["max_position_embeddings"]
    length = config["tasks"][cell["task"]]["max_seq_length"]
    if length > positions:
        raise ConfigError(
            f"{source}: tasks.{cell['task']}.max_seq_length={length} exceeds the max_position_embeddings="
            f"{positions} of ablation '{cell['ablation']}' ({row_where}); shorten the task inputs or enlarge "
            "the model's position table.")
    saved = [f"step-{s}" for s in spec["pretrain"]["save_steps"]]
    if cell["step"] != FINAL_STEP and cell["step"] not in saved:
        raise ConfigError(
            f"{source}: {row_where}.step: '{cell['step']}' is not a saved checkpoint of "
            f"'{cell['ablation']}'; add its number to pretrain.save_steps or use 'final'.")


def _check_checkpoints(config: dict, source: str) -> None:
    for name, entry in config["checkpoints"].items():
        where = f"checkpoints.{name}"
        if (entry.get("hub") is None) == (entry.get("path") is None):
            raise ConfigError(f"{source}: {where}: give exactly one of hub (a hub model id) or path (a local folder "
                              "in HF format).")
        if entry.get("revision") is not None and entry.get("hub") is None:
            raise ConfigError(f"{source}: {where}.revision: only a hub checkpoint has revisions; drop it for a path.")
        if name in config["ablations"]:
            raise ConfigError(f"{source}: {where}: '{name}' is also an ablation; table rows name either, so rename one.")


def _table_tasks(config: dict) -> list[str]:
    tasks = {c["task"] for t in config.get("tables", {}).values() for c in t["columns"].values() if "task" in c}
    tasks |= {f["task"] for f in config.get("figures", {}).values()}
    return sorted(tasks)


# --- resolution -----------------------------------------------------------------------------

def resolve_ablation(config: dict, name: str, check: bool = True) -> dict:
    """The complete, self-contained spec of one pretraining run: defaults + the ablation's overrides.

    The spec is saved beside the checkpoint, and downstream jobs rebuild the model from it,
    never from today's config.
    """
    if check and name not in config["ablations"]:
        _known("ablation", name, config["ablations"], "ablation", "config")
    from .models.objectives import OBJECTIVES

    ablation = config["ablations"][name]
    objective = OBJECTIVES[ablation["objective"]]
    spec = {
        "name": name,
        "objective": objective.name,
        "packing": ablation.get("packing", objective.packings[0]),
        "model": {**config["model"], **ablation.get("model", {})},
        "masking": {**config["masking"], **ablation.get("masking", {})},
        "pretrain": {**config["pretrain"], **ablation.get("pretrain", {})},
    }
    spec["pretrain"]["save_steps"] = sorted(set(spec["pretrain"]["save_steps"]))
    return spec


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
    return stable_hash({k: v for k, v in spec.items() if k != "name"})


def hp_key(lr: float, batch_size: int, epochs: int) -> str:
    """Readable, unique directory name of a grid point, e.g. lr0.0001_bs32_ep3."""
    return f"lr{lr:g}_bs{batch_size}_ep{epochs}"


def grid_points(config: dict, task: str, head: str = "linear") -> list[dict]:
    """The task's grid: schema default < finetune.grid < tasks.<task>.grid < (for a frozen,
    feature-based head) finetune.feature_based_grid."""
    from .models.head_kinds import HEAD_KINDS

    default = schema()["properties"]["finetune"]["properties"]["grid"]["default"]
    grid = {**default, **config["finetune"]["grid"], **config["tasks"][task].get("grid", {})}
    if HEAD_KINDS[head].frozen:
        grid.update(config["finetune"]["feature_based_grid"])
    return [
        {"lr": lr, "batch_size": bs, "epochs": ep, "key": hp_key(lr, bs, ep)}
        for lr, bs, ep in itertools.product(sorted(grid["lr"]), sorted(grid["batch_size"]), sorted(grid["epochs"]))
    ]


def grid_point(config: dict, task: str, head: str, key: str) -> dict:
    for point in grid_points(config, task, head):
        if point["key"] == key:
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


def table_cells(config: dict, name: str) -> list[dict]:
    """Every (row, column) of a table or figure with what fills it, in config order.

    A figure's rows are its series and its columns the checkpoint steps (as strings).
    """
    if name in config["figures"]:
        figure = config["figures"][name]
        return [
            {"row": label, "column": str(step), "ablation": ablation, "origin": "pretrain",
             "spec_hash": spec_hash(config, ablation),
             "head": figure["head"],
             "step": checkpoint_name(config, ablation, step), "source": "finetune", "task": figure["task"],
             "metric": figure["metric"], "split": None, "paper_row": label}
            for label, ablation in figure["series"].items() for step in checkpoint_steps(config, ablation)
        ]
    spec = config["tables"][name]
    cells = []
    for row_label, row in spec["rows"].items():
        run = row.get("ablation") or row["checkpoint"]
        if "ablation" in row:
            run_hash = spec_hash(config, run)
        else:
            _known("checkpoint", run, config["checkpoints"], f"tables.{name}.rows.{row_label}.checkpoint", "config")
            run_hash = checkpoint_hash(config["checkpoints"][run])
        for col_label, column in spec["columns"].items():
            cells.append({
                "row": row_label, "column": col_label, "paper_row": row.get("paper_row", row_label),
                "ablation": run, "origin": "pretrain" if "ablation" in row else "checkpoint",
                "spec_hash": run_hash,
                "head": column.get("head") or row.get("head", "linear"),
                "step": row.get("step", FINAL_STEP),
                "source": column.get("source", "finetune"), "task": column.get("task"),
                "metric": column["metric"], "split": column.get("split"),
            })
    return cells


def finetune_runs(config: dict, names: list[str] | None = None) -> list[dict]:
    """The distinct fine-tuning jobs (one per grid point) that the given tables/figures need, sorted."""
    runs = set()
    for name in report_names(config) if names is None else names:
        for cell in table_cells(config, name):
            if cell["source"] != "finetune":
                continue
            for point in grid_points(config, cell["task"], cell["head"]):
                runs.add((cell["ablation"], cell["step"], cell["task"], cell["head"], point["key"]))
    keys = ("ablation", "step", "task", "head", "hp")
    return [dict(zip(keys, run)) for run in sorted(runs)]


def pretrain_runs(config: dict, names: list[str] | None = None) -> list[str]:
    """The ablations whose pretraining the given tables/figures need, sorted."""
    return sorted({cell["ablation"] for name in (report_names(config) if names is None else names)
                   for cell in table_cells(config, name) if cell["origin"] == "pretrain"})


def checkpoint_runs(config: dict, names: list[str] | None = None) -> list[str]:
    """The checkpoints (config's checkpoints:) the given tables need, sorted."""
    return sorted({cell["ablation"] for name in (report_names(config) if names is None else names)
                   for cell in table_cells(config, name) if cell["origin"] == "checkpoint"})


def finetune_settings(config: dict, task: str, head: str, hp: str) -> dict:
    """Everything a fine-tuning job depends on besides its checkpoint and data: its params."""
    settings = {k: v for k, v in config["finetune"].items() if k not in ("grid", "feature_based_grid")}
    settings["task"] = {k: v for k, v in config["tasks"][task].items()
                        if k not in ("grid", "n_train", "n_dev", "hub", "source", "path", "files")}
    settings["hp"] = grid_point(config, task, head, hp)
    return settings
