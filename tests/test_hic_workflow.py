"""The workflow's `hic` target on the real demo data (yeast cooler, chrI + chrIII), in a temporary directory."""


import numpy as np
import pytest
import xarray as xr
import yaml

from demo_paths import YEAST_COOL, YEAST_FASTA, snakemake

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def hic_run(tmp_path_factory):
    wd = tmp_path_factory.mktemp("wf")
    cfg = {"references": {"yeast": {"fasta": str(YEAST_FASTA), "hic": str(YEAST_COOL), "include": ["chrI", "chrIII"]},
                          # no hic key: no hic jobs for this reference
                          "plain": {"fasta": str(YEAST_FASTA), "include": ["chrI"]}},
           "levels": {"hic": {"top_percent": 3.0}}}
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(wd, "hic")
    return wd


def test_hic_target_writes_graphs_and_trans(hic_run):
    res = hic_run / "results"
    assert sorted(p.name for p in (res / "yeast/hic").glob("*.zarr")) == ["chrI.zarr", "chrIII.zarr", "trans.zarr"]
    assert not (res / "plain/hic").exists()
    ds = xr.open_zarr(res / "yeast/hic/chrIII.zarr")
    assert ds.attrs["top_percent"] == 3.0 and ds.sizes["bin"] == 32 and ds.attrs["contig"] == "chrIII"
    assert np.isfinite(ds["edge_features"].values).all()
    tr = xr.open_zarr(res / "yeast/hic/trans.zarr")
    assert set(tr["chrom1"].values.tolist()) | set(tr["chrom2"].values.tolist()) <= {"chrI", "chrIII"}
    assert (res / "yeast/logs/hic/chrI.log").stat().st_size > 0
    assert (res / "yeast/benchmarks/hic/trans.tsv").exists()


def test_config_change_reruns_only_hic(hic_run):
    cfg = yaml.safe_load((hic_run / "config.yaml").read_text())
    dry = snakemake(hic_run, "hic", "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    cfg["levels"]["hic"]["top_percent"] = 2.0
    (hic_run / "config.yaml").write_text(yaml.safe_dump(cfg))
    dry = snakemake(hic_run, "hic", "-n")
    out = dry.stdout + dry.stderr
    # top_percent shapes the cis graphs only; the trans links (trans_top_percent) stay
    assert "hic_graph" in out and "rule hic_trans" not in out
