"""Configuration defaults, read from config.schema.yaml: the one place where they are written down."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "config.schema.yaml"


@functools.cache
def _schema() -> dict[str, Any]:
    if not SCHEMA_FILE.is_file():
        raise FileNotFoundError(f"{SCHEMA_FILE} not found: install photoarchive from its repository "
                                "(pip install -e .), which keeps the schema beside the package")
    return yaml.safe_load(SCHEMA_FILE.read_text(encoding="utf-8"))


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    """A schema node with a local `$ref` (#/$defs/...) replaced by what it names."""
    if "$ref" not in node:
        return node
    name = node["$ref"].rsplit("/", 1)[-1]
    return {**_schema()["$defs"][name], **{k: v for k, v in node.items() if k != "$ref"}}


def _defaults(node: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, sub in node.get("properties", {}).items():
        sub = _resolve(sub)
        if sub.get("type") == "object" and "properties" in sub:
            out[key] = {**sub.get("default", {}), **_defaults(sub)}
        elif "default" in sub:
            out[key] = sub["default"]
    return out


def schema_property(*path: str) -> dict[str, Any]:
    """The schema's node for a config key (type, bounds, enum, default), e.g. ``("restore", "strength")``."""
    node = _schema()
    for key in path:
        node = _resolve(node["properties"][key])
    return node


def schema_defaults(*section: str) -> dict[str, Any]:
    """The defaults the schema gives a config section, nested sections filled in (a fresh copy).

    ``schema_defaults("restore", "paste")`` is what ``config["restore"]["paste"]`` holds when config.yaml
    leaves it out: the same values ``snakemake.utils.validate`` fills in.
    """
    return copy.deepcopy(_defaults(schema_property(*section)))
