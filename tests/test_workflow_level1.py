"""The workflow's `level1` target on the real demo data (chrI), in a temporary directory."""

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from demo_paths import YEAST_FASTA, YEAST_GTF, snakemake

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def chrI_run(tmp_path_factory):
    wd = tmp_path_factory.mktemp("wf")
    cfg = {"references": {"yeast": {"fasta": str(YEAST_FASTA), "annotation": str(YEAST_GTF), "include": ["chrI"]}}}
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(wd, "level1")
    return wd


def test_level1_target_writes_one_embedding_per_window(chrI_run):
    ds = xr.open_zarr(chrI_run / "results/yeast/level1/chrI.zarr")
    assert ds.sizes["window"] == math.ceil(230218 / 512)
    assert ds.sizes["feature"] == 128
    assert ds.attrs["contig"] == "chrI" and ds.attrs["model"]["weights"] == "seeded-init"
    assert str(YEAST_FASTA) in ds.attrs["inputs"]
    assert np.isfinite(ds["window_embedding"].values).all()


def test_every_annotated_exon_base_has_a_per_base_embedding(chrI_run):
    ann = pd.read_parquet(chrI_run / "results/yeast/annotation.parquet")
    ex = ann[(ann.feature == "exon") & (ann.contig == "chrI")]
    expected = np.unique(np.concatenate([np.arange(s, e) for s, e in zip(ex.start, ex.end)]))
    ds = xr.open_zarr(chrI_run / "results/yeast/level1/chrI.zarr")
    assert np.array_equal(ds["exon_base_position"].values, expected)
    emb = ds["exon_base_embedding"].values
    assert emb.shape == (len(expected), 128) and np.isfinite(emb).all()
    tokens = xr.open_zarr(chrI_run / "results/yeast/tokens.zarr", group="chrI")["tokens"].values
    assert np.array_equal(ds["exon_base_token"].values, tokens[expected])


def test_logs_and_benchmarks_are_written_and_a_rerun_does_nothing(chrI_run):
    assert (chrI_run / "results/yeast/logs/level1/chrI.log").stat().st_size > 0
    assert (chrI_run / "results/yeast/benchmarks/level1/chrI.tsv").exists()
    dry = snakemake(chrI_run, "level1", "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_a_bad_config_fails_before_any_job(tmp_path):
    cfg = {"references": {"yeast": {"fasta": str(YEAST_FASTA)}}, "levels": {"level1": {"heads": "eight"}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "level1", check=False)
    assert proc.returncode != 0
    assert "levels.level1.heads" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()
