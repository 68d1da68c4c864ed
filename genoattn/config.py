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
#: Levels with a training objective: ``levels.<level>.checkpoint: train`` loads the workflow's own
#: training output (results/{reference or cohort}/train/<level>/model.safetensors).
TRAINABLE_LEVELS = ("level1", "level2", "level4", "level5", "level6")
#: The config a run without --configfile uses (relative to the working directory): the demo.
DEMO_CONFIG = "config/config.yaml"


class ConfigError(ValueError):
    """A config value is wrong; the message names the key and what is allowed."""


class _StrictLoader(yaml.SafeLoader):
    """yaml.safe_load that refuses a key given twice in one mapping (PyYAML keeps the last one silently)."""


def _no_duplicates(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            continue
        if key in seen:
            raise ConfigError(
                f"{loader.name}: line {key_node.start_mark.line + 1}: key {key!r} is given twice in the same "
                f"section (first on line {seen[key] + 1}); YAML would keep only the last one. Fix: remove or "
                "rename one of them (e.g. two references need two names).")
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def read_yaml(path: str | os.PathLike) -> dict:
    """A config file as a dict; a duplicated key, a YAML syntax error or a non-mapping top level is a
    ConfigError naming the file and the line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist (working directory {Path.cwd()})")
    try:
        with open(path) as fh:
            loader = _StrictLoader(fh)
            loader.name = str(path)
            try:
                data = loader.get_single_data()
            finally:
                loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}. Fix: correct the syntax at the line shown "
                          "(indentation, a missing ':' or an unclosed quote).") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config keys (references, cohorts, "
                          f"levels, ...), not a {type(data).__name__}. Fix: write `key: value` sections as in "
                          "config/config.yaml (every key: config/README.md)")
    return data


def merge(base: dict, override: dict) -> dict:
    """``base`` updated recursively with ``override`` (as Snakemake merges --config into a config file)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def workflow_config(snakemake_config: dict, configfiles: list, overrides: dict | None,
                    base_dir: str | os.PathLike = ".") -> dict:
    """The validated config of a workflow run: the user's --configfile(s) alone when given (never merged
    with the demo's), else the demo config (DEMO_CONFIG); --config values on top in both cases.

    ``snakemake_config`` is what Snakemake parsed (the files merged, then ``overrides``); the files are
    read again here with the strict loader, so a duplicated key stops the run as it stops check-config."""
    if configfiles:
        for path in configfiles:
            read_yaml(path)
        raw = snakemake_config
        source = ", ".join(map(str, configfiles))
    else:
        demo = Path(base_dir) / DEMO_CONFIG
        if not demo.is_file():
            raise ConfigError(f"no --configfile given and no {DEMO_CONFIG} in {Path(base_dir).resolve()}. Fix: "
                              "run from the repository root (the demo), or pass --configfile your.yaml")
        raw = merge(read_yaml(demo), overrides or {})
        source = str(demo)
    try:
        return validate_config(raw, base_dir=base_dir)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


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


def defaults(section: str) -> dict:
    """The schema's defaults of one section: 'reference', 'cohort' (one entry of references/cohorts),
    'kernels', 'levels.<name>' or 'training.<level>'. For code and tests that build a section without a whole config."""
    schema = load_schema()
    if section in ("reference", "cohort"):
        node = schema["$defs"][section]
    elif section == "kernels":
        node = schema["properties"]["kernels"]
    elif section.startswith(("levels.", "training.")):
        top, name = section.split(".", 1)
        node = schema["properties"][top]["properties"][name]
    else:
        raise ValueError(f"unknown config section {section!r}")
    return _fill_defaults({}, node, schema)


def _describe(error) -> str:
    path = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    schema = error.schema if isinstance(error.schema, dict) else {}
    desc = schema.get("description")
    about = f" ({desc})" if desc and len(desc) < 200 else ""
    if error.validator == "enum":
        return (f"config key {path}: {error.instance!r} is not allowed. Fix: use one of "
                f"{', '.join(map(str, error.validator_value))}")
    if error.validator == "additionalProperties":
        return f"config key {path}: {error.message}. Fix: check the spelling against config/README.md"
    if error.validator == "required":
        return f"config key {path}: {error.message}. Fix: add it (config/README.md)"
    if error.validator == "type":
        return f"config key {path}: {error.message}{about}. Fix: give a value of type {error.validator_value}"
    if error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems"):
        return f"config key {path}: {error.message}{about}. Fix: give a value within the allowed range"
    return f"config key {path}: {error.message}{about}. Fix: see config/README.md for the key's allowed values"


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
    import re

    problems = []
    refs = cfg["references"]
    if not refs and not cfg["cohorts"]:
        problems.append("the config has neither `references` nor `cohorts`: nothing to run. Fix: add a reference "
                        "(references: {name: {fasta: genome.fa}}) or a cohort (cohorts: {name: {vcf: calls.vcf.gz}})")
    for name, c in cfg["cohorts"].items():
        if c["reference"] and c["reference"] not in refs:
            problems.append(f"config key cohorts.{name}.reference: {c['reference']!r} is not a reference; "
                            f"allowed values: {', '.join(refs) or '(none: this config has no references)'} (or null). "
                            "Fix: name one of them, or null for no level-5 context")
        test = (c["held_out"] or {}).get("test_cohort")
        if test and (test not in cfg["cohorts"] or test == name):
            others = [x for x in cfg["cohorts"] if x != name]
            problems.append(f"config key cohorts.{name}.held_out.test_cohort: {test!r} is not another cohort of this "
                            f"config (others: {', '.join(others) or 'none'}). Fix: name a cohort of other individuals "
                            "(the model is measured on them), or null")
        if name in refs:
            problems.append(f"config key cohorts.{name}: the name is also a reference; results/{name}/ would be "
                            "shared. Fix: rename one of them")
        for region in c["regions"] or []:
            from genoattn.io.vcf import REGION_PATTERN

            m = re.fullmatch(REGION_PATTERN, region.strip())
            if not m or (m.group(2) and m.group(3) and
                         int(m.group(2).replace(",", "")) > int(m.group(3).replace(",", ""))):
                problems.append(f"config key cohorts.{name}.regions: {region!r} is not contig[:start[-end]] with "
                                "start <= end. Fix: write it as samtools and bcftools do, e.g. '20' or "
                                "'20:1000000-2000000' (1-based, inclusive)")
    for owner, section in [*(("references", r) for r in refs.items()), *(("cohorts", c) for c in cfg["cohorts"].items())]:
        name, entry = section
        for key in ("include", "exclude"):
            for pattern in entry.get(key, []):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    problems.append(f"config key {owner}.{name}.{key}: {pattern!r} is not a valid regular expression "
                                    f"({exc}). Fix: correct it (Python regular expressions, matched against the whole "
                                    "contig name, e.g. 'chrUn_.*' or 'chr[0-9XY]+')")
    for lvl in ("level1", "level2", "level3", "level4", "level5", "level6"):
        sec = cfg["levels"][lvl]
        if sec["dim"] % sec["heads"]:
            problems.append(f"config key levels.{lvl}: dim {sec['dim']} is not divisible by heads {sec['heads']}. "
                            f"Fix: make dim a multiple of heads (head dim = dim / heads; 16 is what the kernels "
                            "are tuned for)")
        if sec["checkpoint"] == "train" and lvl not in TRAINABLE_LEVELS:
            problems.append(f"config key levels.{lvl}.checkpoint: 'train' names the workflow's own training output, "
                            f"but {lvl} has no training objective yet (trainable: {', '.join(TRAINABLE_LEVELS)}). "
                            "Fix: give a checkpoint file or null (seeded weights)")
    hic_refs = [r for r in refs if refs[r]["hic"]]
    runs_on = {"level1": list(refs), "level2": [r for r in refs if refs[r]["annotation"]],
               "level3": [r for r in refs if refs[r]["annotation"]], "level4": hic_refs, "level5": hic_refs}
    for lvl in ("level1", "level2", "level4", "level5"):
        if cfg["levels"][lvl]["checkpoint"] == "train":
            for r in runs_on[lvl]:
                if not refs[r]["held_out"]:
                    problems.append(f"config key levels.{lvl}.checkpoint: 'train' loads the workflow's own training "
                                    f"output, but references.{r}.held_out is not set, so {r} is not trained on. "
                                    f"Fix: set references.{r}.held_out (test and validation contigs) or give "
                                    "a checkpoint file")
                elif lvl == "level5" and not refs[r]["centromeres"]:
                    problems.append(f"config key levels.level5.checkpoint: 'train' loads the workflow's own training "
                                    f"output, but references.{r}.centromeres is not set, and level-5 training "
                                    "(held-out trans contacts against a position baseline) needs one centromere "
                                    f"per contig. Fix: set references.{r}.centromeres (BED) or give a checkpoint file")
    if cfg["levels"]["level6"]["checkpoint"] == "train" and cfg["cohorts"]:
        trained = [c for c, coh in cfg["cohorts"].items() if coh["held_out"]]
        untrained = [c for c in cfg["cohorts"] if c not in trained]
        if not trained or (len(trained) > 1 and untrained):
            problems.append("config key levels.level6.checkpoint: 'train' loads the workflow's own training output "
                            "(a cohort with held_out trains and uses its own; the others use the one cohort that "
                            f"trains), but {'no cohort has held_out' if not trained else 'cohorts ' + ', '.join(trained) + ' all train, so ' + ', '.join(untrained) + ' would not know whose output to load'}. "
                            "Fix: set cohorts.<name>.held_out (validation_samples, test_cohort) on one cohort, or "
                            "give a checkpoint file")
    l1 = cfg["levels"]["level1"]
    if l1["conv_kernel"] and l1["conv_kernel"] % 2 == 0:
        problems.append(f"config key levels.level1.conv_kernel: {l1['conv_kernel']} is even; the convolution is "
                        "centred on each base, so its width must be odd. Fix: use an odd width (e.g. 9) or 0 (none)")
    annotated = [r for r, ref in refs.items() if ref["annotation"]]
    if l1["stride"] > l1["window"] and annotated:
        problems.append(f"config key levels.level1.stride: {l1['stride']} is larger than levels.level1.window "
                        f"{l1['window']}, so bases between windows get no embedding, but references "
                        f"{', '.join(annotated)} have an annotation whose exon bases levels 2-3 read. Fix: set stride "
                        f"<= window (default: stride = window = 512)")
    l4 = cfg["levels"]["level4"]
    for r, ref in refs.items():
        if not ref["hic"]:
            continue
        if l4["gene_context"] is True and not ref["annotation"]:
            problems.append(f"config key levels.level4.gene_context: true needs level 3, but references.{r} has no "
                            "annotation (levels 2-3 need one). Fix: set references."
                            f"{r}.annotation, or gene_context: auto (use it where there is an annotation) or false")
        if l4["nodes"] == "regulatory_elements" and not ref["regulatory_elements"]:
            problems.append(f"config key levels.level4.nodes: regulatory_elements needs references.{r}."
                            "regulatory_elements (a BED). Fix: set it, or nodes: auto / bins")
    if check_files:
        def need(key, path):
            if path and not (base / path).exists():
                problems.append(f"config key {key}: file {path} does not exist (relative to {base.resolve()}). "
                                "Fix: correct the path (relative paths are read from the working directory)")
        for name, r in refs.items():
            for k in ("fasta", "annotation", "hic", "hic_breakpoints", "regulatory_elements", "variants"):
                need(f"references.{name}.{k}", r.get(k))
        for name, c in cfg["cohorts"].items():
            need(f"cohorts.{name}.vcf", c.get("vcf"))
        need("samples", cfg.get("samples"))
        for lvl, sec in cfg["levels"].items():
            if sec.get("checkpoint") != "train":
                need(f"levels.{lvl}.checkpoint", sec.get("checkpoint"))
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def load_config(path: str | os.PathLike, check_files: bool = True) -> dict:
    """Read (strictly) and validate one config file: what `snakemake --configfile PATH` runs."""
    try:
        return validate_config(read_yaml(path), base_dir=Path.cwd(), check_files=check_files)
    except ConfigError as exc:
        raise ConfigError(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}") from None
