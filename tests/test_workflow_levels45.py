"""The workflow's `level4` and `level5` targets on the real demo data (chrI + chrIII), in a temporary directory."""


import numpy as np
import pytest
import xarray as xr
import yaml

from demo_paths import YEAST_COOL, YEAST_FASTA, snakemake

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def run45(tmp_path_factory):
    wd = tmp_path_factory.mktemp("wf45")
    cfg = {"references": {"yeast": {"fasta": str(YEAST_FASTA), "hic": str(YEAST_COOL),
                                    "include": ["chrI", "chrIII"]}},
           "levels": {"level1": {"reverse_complement": False},
                      "level5": {"block_size": 8, "local_window": 40}},
           "kernels": {"device": "cpu"}}
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(wd, "level5")
    return wd


def test_level4_stores_follow_the_graph_bins(run45):
    for contig in ("chrI", "chrIII"):
        ds = xr.open_zarr(run45 / f"results/yeast/level4/{contig}.zarr")
        hic = xr.open_zarr(run45 / f"results/yeast/hic/{contig}.zarr")
        assert ds["embedding"].dims == ("bin", "feature") and ds.sizes["feature"] == 256
        np.testing.assert_array_equal(ds["start"].values, hic["start"].values)
        np.testing.assert_array_equal(ds["end"].values, hic["end"].values)
        assert (ds["masked"].values >= hic["masked"].values).all()
        emb = ds["embedding"].values
        assert np.isfinite(emb).all() and np.all(emb[ds["masked"].values] == 0)
        assert ds.attrs["gene_context"] is False and ds.attrs["model"]["weights"] == "seeded-init"
        assert str(YEAST_COOL) in ds.attrs["inputs"]


def test_level5_store_is_genome_wide(run45):
    ds = xr.open_zarr(run45 / "results/yeast/level5.zarr")
    n = sum(xr.open_zarr(run45 / f"results/yeast/level4/{c}.zarr").sizes["bin"] for c in ("chrI", "chrIII"))
    assert ds["embedding"].shape == (n, 512)
    assert list(dict.fromkeys(ds["chrom"].values.tolist())) == ["chrI", "chrIII"]
    assert ds.attrs["layout"]["block_size"] == 8 and ds.attrs["nnz_blocks"] > 0
    assert ds.attrs["n_trans_links_used"] == ds.attrs["layout"]["trans_links_in_store"]
    assert (run45 / "results/yeast/level5_layout.npz").exists()
    assert np.isfinite(ds["embedding"].values).all()


def test_logs_benchmarks_and_rerun_does_nothing(run45):
    assert (run45 / "results/yeast/logs/level4/chrI.log").stat().st_size > 0
    assert (run45 / "results/yeast/benchmarks/level5.tsv").exists()
    dry = snakemake(run45, "level5", "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr
