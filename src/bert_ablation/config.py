"""Load and validate the workflow configuration (what it asks to run: ``plan``).

Two layers of checks, both before any compute: the JSON schema (types, ranges, unknown keys,
defaults filled in) and the cross-field rules a schema cannot express (hidden divisible by
heads, a masking mix that sums to 1, names that must exist in a registry, tables that point
at defined ablations). Every error names the offending key and says how to fix it.
"""

from __future__ import annotations

import copy
import difflib

import jsonschema
import yaml

from .facts.head_kinds import HEAD_KINDS
from .facts.objectives import OBJECTIVES
from .facts.tasks import TASKS, WORLD_TASKS
from .plan import (
    FINAL_STEP,
    PRETRAIN_METRICS,
    Cell,
    checkpoint_steps,
    report_names,
    resolve_ablation,
    table_cells,
)
from .schema import ConfigError, known, schema


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
    return f"{source}: {where}: {error.message}{hint}{_text_from_command_line(error)}"


def _text_from_command_line(error: jsonschema.ValidationError) -> str:
    """Why a number or a boolean arrived as text: Snakemake's ``--config key='{a: 5}'`` reads what
    it nests under a key with YAML's BaseLoader, so every value there is a string."""
    if error.validator != "type" or not isinstance(error.instance, str):
        return ""
    try:
        meant = yaml.safe_load(error.instance)
    except yaml.YAMLError:
        return ""
    if isinstance(meant, (bool, int, float)) and jsonschema.Draft202012Validator(error.schema).is_valid(meant):
        return (f"; the value is the text '{error.instance}': Snakemake's --config passes values nested under a "
                "key as text; put this override in a YAML file and add it with --configfile")
    return ""


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


def _read(file: str) -> dict:
    try:
        with open(file, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{file}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the top level must be a mapping of keys, got {type(data).__name__}.")
    return data


def load(path: str, overrides: list[str] | None = None) -> dict:
    """Read a YAML config file (and optional further files merged on top) and validate it."""
    files = [path, *(overrides or [])]
    merged: dict = {}
    for file in files:
        merged = deep_merge(merged, _read(file))
    config = validate(merged, source=", ".join(files))
    check_redefined_ablations(files, config)
    check_shadowed_by_world(config, path, ", ".join(files[1:]) or path, files[1:])
    return config


def check_shadowed_by_world(config: dict, base_file: str, source: str, overrides: list[str] = ()) -> None:
    """Refuse a top-level model / masking / pretrain value that world_recipe overrides with another
    on the built-in world: one that an override file (a preset) states, or one changed
    from ``base_file``'s (config.yaml; a --config value) would have no effect there, silently."""
    if config["corpus"]["source"] != "synthetic":
        return
    base = _read(base_file)
    stated = [(file, _read(file)) for file in overrides]
    for group in ("model", "masking", "pretrain"):
        for key, value in config["world_recipe"][group].items():
            if key not in config[group] or config[group][key] == value:
                continue  # the same value on both layers is no silent no-op
            where = [file for file, data in stated if key in (data.get(group) or {})]
            changed = config[group][key] != (base.get(group) or {}).get(key, config[group][key])
            if where or changed:
                raise ConfigError(
                    f"{where[-1] if where else source}: {group}.{key}={config[group][key]!r} has no effect on the "
                    f"built-in world (corpus.source: synthetic), where world_recipe.{group}.{key}={value!r} sets it; "
                    f"set world_recipe: {{{group}: {{{key}: ...}}}} for the world's runs (or an ablation's own "
                    f"{group}.{key}).")


def check_redefined_ablations(files: list[str], config: dict) -> None:
    """Refuse a file that puts the run on a corpus of its own (corpus.source other than synthetic:
    a preset on real data) and redefines an ablation of an earlier file without stating every key
    that one sets. Files merge key by key (here and in Snakemake's --configfile), so a key left out
    would be inherited silently: a preset's 24-layer row on real text would keep config.yaml's
    width (or, before world_recipe, its rate) for the world's 8-layer model. For such a file an
    ablation it redefines is its whole definition. A file that only adjusts runs (tests/micro.yaml
    shrinks them, whatever the corpus) keeps its partial overrides."""
    if config["corpus"]["source"] == "synthetic":
        return
    earlier: dict[str, tuple[str, dict]] = {}
    for file in files:
        data = _read(file)
        own_corpus = (data.get("corpus") or {}).get("source", "synthetic") != "synthetic"
        for name, ablation in (data.get("ablations") or {}).items():
            if own_corpus and name in earlier and isinstance(ablation, dict):
                first, before = earlier[name]
                missing = [f"{key}={value!r}" for key, value in _flat(before).items() if key not in _flat(ablation)]
                if missing:
                    raise ConfigError(
                        f"{file}: ablations.{name} redefines {first}'s ablation but would inherit its "
                        f"{', '.join(missing)} (files merge key by key); state those keys in {file}, or give "
                        "the ablation a name of its own.")
            if isinstance(ablation, dict):
                earlier[name] = (file, ablation)


def _flat(ablation: dict) -> dict:
    """{"model.layers": 8, "objective": "mlm", ...}: an ablation's keys, one level of groups down."""
    out = {}
    for key, value in ablation.items():
        if isinstance(value, dict):
            out.update({f"{key}.{sub}": v for sub, v in value.items()})
        else:
            out[key] = value
    return out


def deep_merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# --- cross-field rules ----------------------------------------------------------------------

def _check_global_seeds(pretrain: dict, where: str, source: str) -> None:
    if "seeds" in pretrain:
        raise ConfigError(f"{source}: {where}.seeds: pretrain.seeds is one count for every ablation (a fine-tuning "
                          "job fine-tunes every seed's checkpoint, so all ablations share it); set it at the top "
                          "level (pretrain.seeds) or, for the built-in world, in world_recipe.pretrain.seeds.")


def _check_semantics(config: dict, source: str) -> None:
    schema_defs = schema()["definitions"]
    recipe = config["world_recipe"]
    for group in ("model", "masking", "pretrain"):
        for key in recipe[group]:
            known(f"{group} key", key, schema_defs[group]["properties"], f"world_recipe.{group}", source)
    for name, tuned in recipe["ablations"].items():
        known("ablation", name, config["ablations"], f"world_recipe.ablations.{name}", source)
        _check_global_seeds(tuned.get("pretrain", {}), f"world_recipe.ablations.{name}.pretrain", source)
        for group, keys in tuned.items():
            for key in keys:
                known(f"{group} key", key, schema_defs[group]["properties"], f"world_recipe.ablations.{name}.{group}",
                      source)
    for name in config["ablations"]:
        where = f"ablations.{name}"
        ablation = config["ablations"][name]
        known("objective", ablation["objective"], OBJECTIVES, f"{where}.objective", source)
        _check_global_seeds(ablation.get("pretrain", {}), f"{where}.pretrain", source)
        for group in ("model", "masking", "pretrain"):
            for key in ablation.get(group, {}):
                allowed = schema_defs[group]["properties"]
                if key not in allowed:
                    known(f"{group} key", key, allowed, f"{where}.{group}", source)
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
        known("task", name, TASKS, f"tasks.{name}", source)
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
        known("task", figure["task"], config["tasks"], f"{where}.task", source)
        known("metric", figure["metric"], TASKS[figure["task"]].metrics, f"{where}.metric", source)
        steps = set()
        for label, ablation in figure["series"].items():
            known("ablation", ablation, config["ablations"], f"{where}.series.{label}", source)
            steps.add(tuple(checkpoint_steps(config, ablation)))
        if len(steps) > 1:
            raise ConfigError(f"{source}: {where}: the series' ablations save different steps {sorted(steps)}; "
                              "give them the same pretrain.steps and pretrain.save_steps.")
    _check_checkpoints(config, source)
    for name in report_names(config):
        for cell in table_cells(config, name):
            _check_cell(config, cell, f"{'figures' if name in config['figures'] else 'tables'}.{name}", source)


def _check_cell(config: dict, cell: Cell, where: str, source: str) -> None:
    """One table cell. A checkpoint row (a released or local model) gets the checks that need no
    loading; its shape (e.g. the layers a feature-based head reads) is checked when it is
    imported and fine-tuned."""
    row_where, column_where = f"{where}.rows.{cell.row}", f"{where}.columns.{cell.column}"
    checkpoint = cell.origin == "checkpoint"
    if checkpoint:
        known("checkpoint", cell.ablation, config["checkpoints"], f"{row_where}.checkpoint", source)
        if cell.source == "pretrain":
            raise ConfigError(f"{source}: {column_where}: a pretraining metric needs a pretraining run; row "
                              f"'{cell.row}' is checkpoint '{cell.ablation}' (give the row an ablation, or "
                              "drop the column from this table).")
        if cell.step != FINAL_STEP:
            raise ConfigError(f"{source}: {row_where}.step: a checkpoint has one state, 'final' "
                              f"(got '{cell.step}').")
    else:
        known("ablation", cell.ablation, config["ablations"], f"{row_where}.ablation", source)
        if cell.source == "pretrain":
            known("pretraining metric", cell.metric, PRETRAIN_METRICS, f"{column_where}.metric", source)
            return
    if not cell.task:
        raise ConfigError(f"{source}: {column_where}: a fine-tuning column needs a task (or source: pretrain).")
    known("task", cell.task, TASKS, f"{column_where}.task", source)
    task = TASKS[cell.task]
    known("metric", cell.metric, task.metrics, f"{column_where}.metric", source)
    if cell.split is not None:
        known("split", cell.split, task.eval_splits, f"{column_where}.split", source)
    known("head", cell.head, HEAD_KINDS, f"{row_where}.head", source)
    if checkpoint:
        return
    spec = resolve_ablation(config, cell.ablation)
    head = HEAD_KINDS[cell.head]
    if head.frozen and spec["model"]["layers"] < head.min_layers():
        raise ConfigError(
            f"{source}: {row_where}: head '{cell.head}' needs an encoder with at least {head.min_layers()} "
            f"layers; ablation '{cell.ablation}' has {spec['model']['layers']}.")
    positions = spec["model"]["max_position_embeddings"]
    length = config["tasks"][cell.task]["max_seq_length"]
    if length > positions:
        raise ConfigError(
            f"{source}: tasks.{cell.task}.max_seq_length={length} exceeds the max_position_embeddings="
            f"{positions} of ablation '{cell.ablation}' ({row_where}); shorten the task inputs or enlarge "
            "the model's position table.")
    saved = [f"step-{s}" for s in spec["pretrain"]["save_steps"]]
    if cell.step != FINAL_STEP and cell.step not in saved:
        raise ConfigError(
            f"{source}: {row_where}.step: '{cell.step}' is not a saved checkpoint of "
            f"'{cell.ablation}'; add its number to pretrain.save_steps or use 'final'.")


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
