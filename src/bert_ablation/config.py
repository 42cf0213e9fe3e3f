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
from typing import Any

import jsonschema
import yaml

from .storage import stable_hash

FINAL_STEP = "final"


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
    from .heads import HEADS
    from .objectives import OBJECTIVES
    from .tasks import TASKS

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
        bad_steps = [s for s in spec["pretrain"]["save_steps"] if s > spec["pretrain"]["steps"]]
        if bad_steps:
            raise ConfigError(
                f"{source}: {where}: pretrain.save_steps {bad_steps} exceed pretrain.steps="
                f"{spec['pretrain']['steps']}.")
    for name, task in config["tasks"].items():
        _known("task", name, TASKS, f"tasks.{name}", source)
        if TASKS[name].kind == "span" and task["doc_stride"] >= task["max_seq_length"]:
            raise ConfigError(f"{source}: tasks.{name}: doc_stride must be smaller than max_seq_length.")
    for table, spec in config["tables"].items():
        for label, row in spec["rows"].items():
            where = f"tables.{table}.rows.{label}"
            _known("ablation", row["ablation"], config["ablations"], f"{where}.ablation", source)
            positions = resolve_ablation(config, row["ablation"])["model"]["max_position_embeddings"]
            for column in spec["columns"].values():
                length = config["tasks"].get(column["task"], {}).get("max_seq_length", 0)
                if length > positions:
                    raise ConfigError(
                        f"{source}: tasks.{column['task']}.max_seq_length={length} exceeds the "
                        f"max_position_embeddings={positions} of ablation '{row['ablation']}' ({where}); "
                        "shorten the task inputs or enlarge the model's position table.")
            _known("head", row.get("head", "linear"), HEADS, f"{where}.head", source)
            step = row.get("step", FINAL_STEP)
            saved = [f"step-{s}" for s in resolve_ablation(config, row["ablation"])["pretrain"]["save_steps"]]
            if step != FINAL_STEP and step not in saved:
                raise ConfigError(
                    f"{source}: {where}.step: '{step}' is not a saved checkpoint of "
                    f"'{row['ablation']}'; add its number to pretrain.save_steps or use 'final'.")
        for label, column in spec["columns"].items():
            where = f"tables.{table}.columns.{label}"
            _known("task", column["task"], TASKS, f"{where}.task", source)
            _known("metric", column["metric"], TASKS[column["task"]].metrics, f"{where}.metric", source)


def _table_tasks(config: dict) -> list[str]:
    return sorted({c["task"] for t in config.get("tables", {}).values() for c in t["columns"].values()})


# --- resolution -----------------------------------------------------------------------------

def resolve_ablation(config: dict, name: str, check: bool = True) -> dict:
    """The complete, self-contained spec of one pretraining run: defaults + the ablation's overrides.

    The spec is saved beside the checkpoint, and downstream jobs rebuild the model from it,
    never from today's config.
    """
    if check and name not in config["ablations"]:
        _known("ablation", name, config["ablations"], "ablation", "config")
    from .objectives import OBJECTIVES

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


def ablation_hash(spec: dict) -> str:
    return stable_hash({k: v for k, v in spec.items() if k != "name"})


def hp_key(lr: float, batch_size: int, epochs: int) -> str:
    """Readable, unique directory name of a grid point, e.g. lr0.0001_bs32_ep3."""
    return f"lr{lr:g}_bs{batch_size}_ep{epochs}"


def grid_points(config: dict, task: str) -> list[dict]:
    default = schema()["properties"]["finetune"]["properties"]["grid"]["default"]
    grid = {**default, **config["finetune"]["grid"], **config["tasks"][task].get("grid", {})}
    return [
        {"lr": lr, "batch_size": bs, "epochs": ep, "key": hp_key(lr, bs, ep)}
        for lr, bs, ep in itertools.product(sorted(grid["lr"]), sorted(grid["batch_size"]), sorted(grid["epochs"]))
    ]


def grid_point(config: dict, task: str, key: str) -> dict:
    for point in grid_points(config, task):
        if point["key"] == key:
            return point
    raise ConfigError(f"config: no grid point '{key}' for task '{task}'.")


def table_cells(config: dict, table: str) -> list[dict]:
    """Every (row, column) of a table with the fine-tuning runs that fill it."""
    spec = config["tables"][table]
    cells = []
    for row_label, row in spec["rows"].items():
        for col_label, column in spec["columns"].items():
            cells.append({
                "row": row_label, "column": col_label,
                "ablation": row["ablation"], "head": row.get("head", "linear"),
                "step": row.get("step", FINAL_STEP), "task": column["task"], "metric": column["metric"],
            })
    return cells


def finetune_runs(config: dict, tables: list[str] | None = None) -> list[dict]:
    """The distinct fine-tuning jobs (one per grid point) that the given tables need, sorted."""
    runs = set()
    for table in tables or sorted(config["tables"]):
        for cell in table_cells(config, table):
            for point in grid_points(config, cell["task"]):
                runs.add((cell["ablation"], cell["step"], cell["task"], cell["head"], point["key"]))
    keys = ("ablation", "step", "task", "head", "hp")
    return [dict(zip(keys, run)) for run in sorted(runs)]


def finetune_settings(config: dict, task: str, hp: str) -> dict:
    """Everything a fine-tuning job depends on besides its checkpoint and data: its params."""
    settings = {k: v for k, v in config["finetune"].items() if k != "grid"}
    settings["task"] = {k: v for k, v in config["tasks"][task].items() if k not in ("grid", "n_train", "n_dev", "hub", "source")}
    settings["hp"] = grid_point(config, task, hp)
    return settings
