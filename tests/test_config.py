"""A bad config fails before any job runs, naming the key and the allowed values."""

import subprocess
import sys

import pytest
import yaml

from genoattn.config import ConfigError, load_schema, validate_config

FASTA = "data/demo/yeast_R64/S288C_R64-2-1.fa.gz"


def _cfg(**levels):
    return {"references": {"y": {"fasta": FASTA}}, "levels": levels}


def _error(cfg, root) -> str:
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, base_dir=root)
    return str(err.value)


def test_the_demo_config_is_valid_and_gets_defaults(root):
    with open(root / "config" / "config.yaml") as fh:
        cfg = validate_config(yaml.safe_load(fh), base_dir=root)
    l1 = cfg["levels"]["level1"]
    assert (l1["window"], l1["stride"], l1["dim"], l1["heads"]) == (512, 512, 128, 8)
    assert cfg["kernels"]["backend"] == "auto"


def test_an_enum_error_lists_the_allowed_values(root):
    msg = _error({**_cfg(), "kernels": {"backend": "cuda-magic"}}, root)
    assert "kernels.backend" in msg and "auto, triton, cpu, reference" in msg


def test_a_misspelt_key_is_named(root):
    msg = _error(_cfg(level1={"windw": 512}), root)
    assert "levels.level1" in msg and "windw" in msg


def test_wrong_types_and_ranges_name_the_key(root):
    assert "levels.level1.window" in _error(_cfg(level1={"window": "512"}), root)
    assert "levels.level1.stride" in _error(_cfg(level1={"stride": 0}), root)


def test_dim_must_divide_by_heads(root):
    msg = _error(_cfg(level1={"dim": 100, "heads": 8}), root)
    assert "levels.level1" in msg and "divisible" in msg


def test_missing_input_files_are_named(root):
    msg = _error({"references": {"y": {"fasta": "nope.fa"}}}, root)
    assert "references.y.fasta" in msg and "nope.fa" in msg


def test_a_cohort_must_name_a_known_reference(root):
    msg = _error({**_cfg(), "cohorts": {"c": {"vcf": "data/demo/1kg_chr20/reference.vcf.gz", "reference": "hg19"}}},
                 root)
    assert "cohorts.c.reference" in msg and "allowed values: y" in msg


def test_every_schema_key_has_a_description():
    schema = load_schema()
    missing = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, sub in node.get("properties", {}).items():
                if isinstance(sub, dict) and "$ref" not in sub and "description" not in sub:
                    missing.append(f"{path}.{key}")
            for key, sub in node.items():
                walk(sub, f"{path}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{path}[{i}]")

    walk(schema, "")
    assert not missing, missing


def test_the_cli_reports_a_bad_config_and_exits_nonzero(root, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_cfg(level1={"heads": 0})))
    proc = subprocess.run([sys.executable, "-m", "genoattn.cli", "check-config", str(bad)], cwd=root,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "levels.level1.heads" in proc.stderr
