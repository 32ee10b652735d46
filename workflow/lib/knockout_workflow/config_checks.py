"""The whole check of a config, in the order the workflow runs it (``checked_config``).

The JSON schema (which fills the defaults), then what it cannot express: finite numbers
and integers, and rules that span several keys. The workflow runs it before any job, on
the config and on every sweep point, so a bad value stops the run with one sentence
naming the key, the value and what is allowed.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import yaml

from knockout import models
from knockout_workflow.data_sources import data_source

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"
"""workflow/schemas/config.schema.yaml: the keys, their types, ranges and defaults."""
SCHEMA = yaml.safe_load(SCHEMA_FILE.read_text(encoding="utf-8"))


class ConfigError(ValueError):
    """A config the workflow refuses; its message names the key and what is allowed."""


def _filling_defaults(validator_class):
    """``validator_class`` made to fill in every property's schema default where the
    instance lacks it, as Snakemake's ``validate`` does."""
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, properties, instance, schema):
        if validator.is_type(instance, "object"):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from check_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": properties})


SCHEMA_CHECK = _filling_defaults(jsonschema.Draft202012Validator)(SCHEMA)
"""The schema as a validator made once: Snakemake's ``validate`` reads and compiles the
schema at every call (about 80 ms), which for the 30 points of the shipped sweeps was
2.5 s of every start of the workflow."""


def checked_config(settings: dict, where: str = "config") -> dict:
    """``settings`` checked as a whole and returned with the schema's defaults filled in:
    the schema, then numbers, then the cross-key rules; the first stage that finds
    problems raises them as one ``ConfigError`` naming ``where``."""
    if error := jsonschema.exceptions.best_match(SCHEMA_CHECK.iter_errors(settings)):
        at = ".".join(map(str, error.absolute_path)) or "the top level"
        raise ConfigError(f"invalid {where}: {at}: {error.message}")
    if problems := number_problems(settings, SCHEMA) or config_problems(settings):
        raise ConfigError(f"invalid {where}:\n" + "\n".join(f"  {p}" for p in problems))
    return settings


def number_problems(config, schema: dict) -> list[str]:
    """Numbers the JSON schema lets through: NaN and infinity (its range checks do not catch
    NaN), and integer-valued floats where an integer is required (``200.0``: JSON Schema
    counts it as an integer, but PyTorch does not)."""
    definitions = schema.get("$defs", {})
    problems = []

    def walk(value, node: dict, where: str) -> None:
        while "$ref" in node:
            node = definitions[node["$ref"].rsplit("/", 1)[-1]] | {
                key: item for key, item in node.items() if key != "$ref"
            }
        types = node.get("type", [])
        types = [types] if isinstance(types, str) else types
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{where or 'config'}: {value} is not a finite number")
        elif isinstance(value, float) and "integer" in types and "number" not in types:
            problems.append(f"{where}: {value!r} must be an integer (write {int(value)})")
        elif isinstance(value, dict):
            for key, item in value.items():
                child = node.get("properties", {}).get(key)
                if child is None:
                    extra = node.get("additionalProperties")
                    child = extra if isinstance(extra, dict) else {}
                walk(item, child, f"{where}.{key}" if where else str(key))
        elif isinstance(value, list):
            items = node.get("items")
            for index, item in enumerate(value):
                walk(item, items if isinstance(items, dict) else {}, f"{where}[{index}]")

    walk(config, schema, "")
    return problems


def config_problems(config: dict) -> list[str]:
    """Every cross-key problem of a schema-valid config (empty when it is fine)."""
    problems = []
    allowed = ", ".join(models.TRAINED)
    for where, names in (
        ("models", config["models"]),
        ("train.per_model", config["train"]["per_model"]),
        ("plot.colors", config["plot"]["colors"]),
    ):
        problems.extend(
            f"{where}: model {name!r} unknown (allowed: {allowed})"
            for name in names
            if name not in models.TRAINED
        )
    if problems:
        return problems
    return data_source(config).config_problems() + _shared_problems(config)


def color_problems(colors: dict[str, str]) -> list[str]:
    """``plot.colors`` values matplotlib cannot draw, refused before any job rather than at
    the plot step after the training (``matplotlib.colors`` alone, and only when colours are
    given: it adds ~65 ms to the workflow's start)."""
    if not colors:
        return []
    from matplotlib.colors import is_color_like

    return [
        f"plot.colors.{model}: {color!r} is not a colour (allowed: a name such as 'red' or "
        f"'tab:blue', a hex code such as '#d55e00', or a grey level such as '0.5')"
        for model, color in colors.items()
        if not is_color_like(color)
    ]


def _shared_problems(config: dict) -> list[str]:
    """Problems whatever the data source."""
    problems = color_problems(config["plot"]["colors"])
    if "png" not in config["plot"]["formats"]:
        problems.append(
            f"plot.formats = {config['plot']['formats']} lacks png, which the report shows; "
            f"add it (e.g. [png, pdf])"
        )
    unused = sorted(set(config["train"]["per_model"]) - set(config["models"]))
    if unused:
        problems.append(
            f"train.per_model names {', '.join(unused)}, which is not in models "
            f"({', '.join(config['models'])}); add it to models or remove the override"
        )
    return problems


def point_name(value) -> str:
    """A swept value as a folder name: a list of layer widths joined with x ([] is none)."""
    if isinstance(value, list):
        return "x".join(str(width) for width in value) or "none"
    return str(value)


def sweep_points(config: dict) -> Iterator[tuple[str, str, str, dict]]:
    """Each sweep point as (sweep, its folder name, where it is declared, its whole config).

    A point is the config with the sweep's ``set`` keys and then its ``key`` (each
    ``section.name``) set; the caller checks each point's config like the main one.
    """
    for sweep, declaration in (config["sweeps"] or {}).items():
        section, name = declaration["key"].split(".")
        for index, value in enumerate(declaration["values"]):
            point = copy.deepcopy(config)
            for fixed, fixed_value in declaration.get("set", {}).items():
                fixed_section, fixed_name = fixed.split(".")
                point[fixed_section][fixed_name] = fixed_value
            point[section][name] = value
            where = f"sweeps.{sweep}.values[{index}] ({declaration['key']} = {value!r})"
            yield sweep, point_name(value), where, point
