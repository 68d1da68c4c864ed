"""Sample sheet: which samples of each cohort's VCF/BCF are used, and their covariates.

The sheet (config key ``samples``, e.g. ``config/samples.tsv``) is a TSV with a header and the
columns ``sample_id``, ``cohort`` and any number of covariates; each row is validated against
``workflow/schemas/samples.schema.yaml``.

Selection rule (documented in config/README.md):
* a cohort with rows in the sheet keeps exactly those samples, in the sheet's order;
* a cohort without rows (or no sheet at all, ``samples: null``) keeps every sample of its VCF, in
  the VCF header's order.

A sample listed for a cohort but absent from its VCF, or listed twice for the same cohort, is an
error that lists them (all of them, up to 20) and names both files.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path

import pandas as pd
import yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "samples.schema.yaml"


class SampleSheetError(ValueError):
    """The sample sheet does not fit the config or the VCFs; the message names the file and the fix."""


def _listing(names, limit: int = 20) -> str:
    names = list(names)
    return ", ".join(map(str, names[:limit])) + (f" ... ({len(names)} in all)" if len(names) > limit else "")


@lru_cache(maxsize=8)
def _read_sheet_cached(path: str, mtime: float) -> pd.DataFrame:
    import jsonschema

    with open(SCHEMA_PATH) as fh:
        schema = yaml.safe_load(fh)
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment="#")
    except Exception as exc:  # pragma: no cover - pandas' message is good enough
        raise SampleSheetError(f"sample sheet {path}: cannot be read as TSV ({exc}). Fix: write it tab-separated "
                               "with a header line sample_id<TAB>cohort[<TAB>covariates]") from exc
    missing_cols = [c for c in ("sample_id", "cohort") if c not in df.columns]
    if missing_cols:
        raise SampleSheetError(f"sample sheet {path}: missing column(s) {', '.join(missing_cols)}; the header "
                               f"must name sample_id and cohort, found {list(df.columns)}. Fix: a tab-separated "
                               "header line sample_id<TAB>cohort (commas or spaces do not separate columns)")
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for i, row in enumerate(df.to_dict(orient="records")):
        for err in validator.iter_errors(row):
            col = ".".join(map(str, err.absolute_path)) or "(row)"
            problems.append(f"line {i + 2}, column {col}: {err.message}")
    if problems:
        raise SampleSheetError(f"sample sheet {path} is invalid:\n  " + "\n  ".join(problems[:20]) +
                               f"\nFix: correct those rows ({SCHEMA_PATH.name}: sample_id and cohort are required, "
                               "without whitespace)")
    return df


def read_sample_sheet(path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate the sheet; covariate columns stay strings (see :func:`covariates`)."""
    path = str(path)
    if not os.path.isfile(path):
        raise SampleSheetError(f"sample sheet {path} does not exist. Fix: correct the config key `samples` "
                               "(or set it to null to keep every VCF sample)")
    return _read_sheet_cached(path, os.path.getmtime(path)).copy()


def vcf_samples(vcf: str | os.PathLike) -> list[str]:
    """Sample names of a VCF/BCF header (reads the header only)."""
    import pysam

    if not os.path.isfile(vcf):
        raise FileNotFoundError(f"VCF {vcf} does not exist. Fix: correct cohorts.<name>.vcf in the config")
    try:
        with pysam.VariantFile(str(vcf)) as vf:
            return list(vf.header.samples)
    except (OSError, ValueError) as exc:
        from genoattn.io.vcf import VcfError

        raise VcfError(f"VCF {vcf}: its header cannot be read ({exc}); the file is truncated, corrupt or not a "
                       f"VCF/BCF. Fix: download or copy it again (check with `bgzip -t {vcf}` or `bcftools view -h "
                       f"{vcf}`)") from None


def select_samples(config: dict, cohort: str) -> list[str]:
    """The samples of ``cohort`` in the order they are stored (see the module docstring)."""
    ccfg = config["cohorts"][cohort]
    in_vcf = vcf_samples(ccfg["vcf"])
    sheet = config.get("samples")
    if not sheet:
        return in_vcf
    df = read_sample_sheet(sheet)
    rows = df[df["cohort"] == cohort]
    if rows.empty:
        return in_vcf
    ids = list(rows["sample_id"])
    from collections import Counter

    dup = sorted(s for s, n in Counter(ids).items() if n > 1)
    vcf_set = set(in_vcf)
    absent = [s for s in ids if s not in vcf_set]
    msgs = []
    if dup:
        msgs.append(f"sample(s) listed more than once for cohort {cohort}: {_listing(dup)}")
    if absent:
        msgs.append(f"sample(s) of cohort {cohort} not in {ccfg['vcf']} ({len(in_vcf)} samples, first "
                    f"{_listing(in_vcf[:3])}): {_listing(absent)}")
    if msgs:
        raise SampleSheetError(f"sample sheet {sheet}: " + "; ".join(msgs) +
                               ". Fix: remove or correct those rows (names are case-sensitive), or point "
                               f"cohorts.{cohort}.vcf at the VCF that holds them.")
    return ids


def check_sheet_cohorts(config: dict) -> None:
    """Every cohort the sample sheet names is a cohort of the config (checked once, before any job)."""
    sheet = config.get("samples")
    if not sheet:
        return
    df = read_sample_sheet(sheet)
    unknown = sorted(set(df["cohort"]) - set(config["cohorts"]))
    if unknown:
        raise SampleSheetError(f"sample sheet {sheet}: cohort(s) {_listing(unknown)} are not in the config's "
                               f"`cohorts` ({_listing(config['cohorts']) or 'none'}). Fix: correct the cohort column "
                               "or add the cohort to the config")


def covariates(config: dict, cohort: str) -> pd.DataFrame:
    """Covariate columns of the cohort's selected samples (index sample_id); numeric where they parse."""
    sheet = config.get("samples")
    samples = select_samples(config, cohort)
    if not sheet:
        return pd.DataFrame(index=pd.Index(samples, name="sample_id"))
    df = read_sample_sheet(sheet)
    df = df[df["cohort"] == cohort].drop(columns=["cohort"]).set_index("sample_id")
    df = df.reindex(samples)
    for col in df.columns:
        num = pd.to_numeric(df[col], errors="coerce")
        if num.notna().sum() == (df[col].fillna("") != "").sum():
            df[col] = num
    return df


def n_shards(n_samples: int, samples_per_shard: int) -> int:
    return max(1, math.ceil(n_samples / max(1, samples_per_shard)))


def shard_slices(n_samples: int, samples_per_shard: int) -> list[slice]:
    """Contiguous sample ranges of each shard, in stored sample order."""
    return [slice(k * samples_per_shard, min(n_samples, (k + 1) * samples_per_shard))
            for k in range(n_shards(n_samples, samples_per_shard))]
