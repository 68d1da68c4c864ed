"""Configuration: load, fill defaults, validate against workflow/schemas/config.schema.yaml.

A bad config fails here, before any job runs, with the key path and the allowed values.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

SCHEMA_PATH = Path(__file__).parent / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A config value is wrong; the message names the key and what is allowed."""


def load_schema() -> dict:
    with open(SCHEMA_PATH) as fh:
        return yaml.safe_load(fh)


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref supported, got {ref}")
        node = root
        for part in ref[2:].split("/"):
            node = node[part]
        extra = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**node, **extra}
    return schema


def _fill_defaults(value: Any, schema: dict, root: dict) -> Any:
    """Fill ``default`` values recursively (properties, additionalProperties, allOf, $ref)."""
    schema = _resolve(schema, root)
    if not isinstance(value, dict):
        return value
    subschemas = [schema] + [_resolve(s, root) for s in schema.get("allOf", [])]
    for sub in subschemas:
        for key, prop in sub.get("properties", {}).items():
            prop = _resolve(prop, root)
            empty_section = value.get(key, 0) is None and prop.get("type") == "object"
            if (key not in value or empty_section) and "default" in prop:
                # a section whose keys are all commented out parses as None: treat it as empty
                value[key] = copy.deepcopy(prop["default"])
            if key in value:
                value[key] = _fill_defaults(value[key], prop, root)
        addl = sub.get("additionalProperties")
        if isinstance(addl, dict):
            known = set(sub.get("properties", {}))
            for key in value:
                if key not in known:
                    value[key] = _fill_defaults(value[key], addl, root)
    return value


def _describe(error) -> str:
    path = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "enum":
        return f"config key {path}: {error.instance!r} is not allowed; allowed values: {', '.join(map(str, error.validator_value))}"
    if error.validator == "additionalProperties":
        return f"config key {path}: {error.message} (check the spelling against config/README.md)"
    if error.validator == "required":
        return f"config key {path}: {error.message}"
    desc = schema.get("description")
    return f"config key {path}: {error.message}" + (f" ({desc})" if desc else "")


def validate_config(config: dict, base_dir: str | os.PathLike = ".", check_files: bool = True) -> dict:
    """Return a validated copy of ``config`` with defaults filled; raise ConfigError otherwise."""
    import jsonschema

    schema = load_schema()
    cfg = _fill_defaults(copy.deepcopy(config or {}), schema, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(_describe(e) for e in errors[:10]))
    _semantic_checks(cfg, Path(base_dir), check_files)
    return cfg


def _semantic_checks(cfg: dict, base: Path, check_files: bool) -> None:
    problems = []
    refs = cfg["references"]
    for name, c in cfg.get("cohorts", {}).items():
        if c.get("reference") and c["reference"] not in refs:
            problems.append(f"config key cohorts.{name}.reference: {c['reference']!r} is not a reference; "
                            f"allowed values: {', '.join(refs)} (or null)")
        if name in refs:
            problems.append(f"config key cohorts.{name}: the name is also a reference; results/{name}/ would be "
                            "shared. Rename one of them.")
    for lvl in ("level1", "level2", "level3", "level4", "level5", "level6"):
        sec = cfg["levels"].get(lvl, {})
        if "dim" in sec and "heads" in sec and sec["dim"] % sec["heads"]:
            problems.append(f"config key levels.{lvl}: dim {sec['dim']} is not divisible by heads {sec['heads']}")
    if check_files:
        def need(key, path):
            if path and not (base / path).exists():
                problems.append(f"config key {key}: file {path} does not exist (relative to {base.resolve()})")
        for name, r in refs.items():
            for k in ("fasta", "annotation", "hic", "hic_breakpoints", "regulatory_elements"):
                need(f"references.{name}.{k}", r.get(k))
        for name, c in cfg.get("cohorts", {}).items():
            need(f"cohorts.{name}.vcf", c.get("vcf"))
        need("samples", cfg.get("samples"))
        for lvl, sec in cfg["levels"].items():
            need(f"levels.{lvl}.checkpoint", sec.get("checkpoint"))
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def load_config(path: str | os.PathLike, check_files: bool = True) -> dict:
    path = Path(path)
    with open(path) as fh:
        raw = yaml.safe_load(fh) or {}
    return validate_config(raw, base_dir=Path.cwd(), check_files=check_files)
