"""The configuration's schema: the one place every key is described and every default is set.

``ConfigError`` and ``known`` (an unknown name, with the closest known one) are here too, so that
the validator (``config``) and the planner (``plan``) share them without importing each other.
"""

from __future__ import annotations

import copy
import difflib
import functools
from importlib import resources

from .storage import read_yaml


class ConfigError(ValueError):
    """A configuration problem, phrased for the user: where, what, and how to fix it."""


@functools.lru_cache(maxsize=1)
def schema() -> dict:
    """The JSON schema (cached; treat as read-only)."""
    return read_yaml(resources.files(__package__).joinpath("config.schema.yaml").read_text())


def schema_defaults(section: str) -> dict:
    """The schema's default of every key of a top-level section (``pretrain``, ``finetune``, ...)
    or of a definition (``task``): the one source of defaults, for code (tests, benchmarks, typed
    settings) that builds a part without a config."""
    node = schema()["properties"].get(section) or {"$ref": f"#/definitions/{section}"}
    if "$ref" in node:  # model, masking, pretrain: defined once, shared with the ablations' overrides
        node = schema()["definitions"][node["$ref"].rsplit("/", 1)[-1]]
    properties = node["properties"]
    return {key: copy.deepcopy(sub["default"]) for key, sub in properties.items() if "default" in sub}


def known(kind: str, name: str, names, where: str, source: str) -> None:
    """Refuse ``name`` unless it is one of ``names``, naming the closest one."""
    if name not in names:
        close = difflib.get_close_matches(name, list(names), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"{source}: {where}: unknown {kind} '{name}'. Known: {', '.join(sorted(names))}.{hint}")
