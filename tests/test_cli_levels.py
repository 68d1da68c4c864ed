"""`genoattn hic|level1..level6|genotypes --config ...`: the chain of levels outside Snakemake on the real
demo data (yeast chrI + chrIII with the 10 kb cooler, 8 samples of a 1000 Genomes chr20 region), small dims."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
import yaml

from demo_paths import ROOT, VCF_1KG, YEAST_COOL, YEAST_FASTA, YEAST_GTF

from genoattn.cli import main
from genoattn.config import load_config
from genoattn.io.samples import vcf_samples
from genoattn.workflow import Layout

pytestmark = pytest.mark.workflow

CONTIGS = ["chrI", "chrIII"]


def _config(wd, samples):
    (wd / "samples.tsv").write_text("sample_id\tcohort\n" + "".join(f"{s}\tkg\n" for s in samples))
    cfg = {"references": {"yeast": {"fasta": str(YEAST_FASTA), "annotation": str(YEAST_GTF), "hic": str(YEAST_COOL),
                                    "include": CONTIGS}},
           "samples": str(wd / "samples.tsv"),
           "cohorts": {"kg": {"vcf": str(VCF_1KG), "regions": ["20:1500000-1540000"], "split_bp": 20_000}},
           "kernels": {"device": "cpu"},
           "levels": {"level1": {"dim": 32, "heads": 2, "reverse_complement": False, "batch_size": 256},
                      "level2": {"dim": 16, "heads": 2}, "level3": {"dim": 16, "heads": 2},
                      "level4": {"dim": 32, "heads": 4, "edge_dim": 8},
                      "level5": {"dim": 32, "heads": 4, "block_size": 8, "local_window": 40},
                      "level6": {"dim": 16, "heads": 2, "window": 16, "n_global": 2, "samples_per_shard": 5,
                                 "batch_size": 4, "ld_blocks": {"min_variants": 5}}}}
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg))
    return str(wd / "config.yaml")


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Run the chain in order; record the error of each command run before its input existed."""
    wd = tmp_path_factory.mktemp("cli_levels")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(wd)
        cfg = _config(wd, vcf_samples(VCF_1KG)[20:28])
        L = Layout(load_config(cfg))
        errors = {}

        def run(*argv, expect_ok=True):
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                rc = main(list(argv))
            if expect_ok:
                assert rc == 0, err.getvalue()[-3000:]
            return rc, err.getvalue()

        errors["level2"] = run("level2", "--config", cfg, "--contig", "chrI", expect_ok=False)
        errors["level6"] = run("level6", "--config", cfg, expect_ok=False)
        run("tokenize", "--fasta", str(YEAST_FASTA), "--out", L.path("yeast", "tokens.zarr"),
            *[a for c in CONTIGS for a in ("--include", c)])
        run("annotate", "--annotation", str(YEAST_GTF), "--fasta", str(YEAST_FASTA),
            "--out", L.path("yeast", "annotation.parquet"))
        run("level1", "--config", cfg, "--reference", "yeast")
        errors["level4"] = run("level4", "--config", cfg, "--contig", "chrIII", expect_ok=False)
        errors["out"] = run("hic", "--config", cfg, "--out", str(wd / "x.zarr"), expect_ok=False)
        for level in ("hic", "level2", "level3", "level4", "level5"):
            run(level, "--config", cfg)
        run("genotypes", "--config", cfg, "--cohort", "kg")
        run("level6", "--config", cfg)
        run("level6", "--config", cfg, "--shard", "1", "--out", str(wd / "shard1.zarr"))
        yield wd, L, errors


def test_stores_where_the_layout_says(chain):
    wd, L, _ = chain
    for pattern in ("level1/{contig}.zarr", "hic/{contig}.zarr", "level2/{contig}.zarr", "level3/{contig}.zarr",
                    "level4/{contig}.zarr"):
        paths = L.per_contig("yeast", pattern)
        assert [p.split("/")[-1] for p in paths] == [f"{c}.zarr" for c in CONTIGS]
        for contig, p in zip(CONTIGS, paths):
            ds = xr.open_zarr(wd / p)
            assert ds.attrs.get("contig", contig) == contig and len(ds.data_vars) > 0
    for p in (L.path("yeast", "hic", "trans.zarr"), L.path("yeast", "level5.zarr"), L.path("kg", "genotypes.zarr"),
              L.path("kg", "ld_blocks.zarr"), L.path("kg", "level6.zarr")):
        xr.open_zarr(wd / p)
    assert (wd / L.path("yeast", "level5_layout.npz")).exists()  # the rule's layout cache
    # split_bp: 1,500,000-1,540,000 is 40,001 bp, so three conversion pieces, joined
    assert L.genotype_parts("kg") == ["20:1500000-1519999", "20:1520000-1539999", "20:1540000-1540000"]
    assert all((wd / p).is_dir() for p in L.genotype_part_paths("kg"))
    assert xr.open_zarr(wd / L.path("kg", "genotypes.zarr")).attrs["parts"] == 3


def test_stores_follow_the_config(chain):
    wd, L, _ = chain
    l1 = xr.open_zarr(wd / L.path("yeast", "level1", "chrI.zarr"))
    assert l1.sizes["feature"] == 32 and l1.attrs["reverse_complement"] is False
    l4 = xr.open_zarr(wd / L.path("yeast", "level4", "chrIII.zarr"))
    hic = xr.open_zarr(wd / L.path("yeast", "hic", "chrIII.zarr"))
    assert l4["embedding"].shape == (hic.sizes["bin"], 32)
    assert l4.attrs["gene_context"] is True  # gene_context auto + an annotation: level 3 is read, as the rule does
    l5 = xr.open_zarr(wd / L.path("yeast", "level5.zarr"))
    assert l5["embedding"].shape[1] == 32 and np.isfinite(l5["embedding"].values).all()
    assert list(dict.fromkeys(l5["chrom"].values.tolist())) == CONTIGS
    l6 = xr.open_zarr(wd / L.path("kg", "level6.zarr"))
    want = vcf_samples(VCF_1KG)[20:28]
    assert list(l6["sample_id"].values) == want and l6.attrs["n_shards"] == 2
    assert l6["sample_embedding"].shape == (8, 16) and np.isfinite(l6["sample_embedding"].values).all()
    # the single shard run with --out holds samples 5..7, the same embeddings as the gathered store
    one = xr.open_zarr(wd / "shard1.zarr")
    assert list(one["sample_id"].values) == want[5:]
    np.testing.assert_allclose(one["sample_embedding"].values, l6["sample_embedding"].values[5:], rtol=1e-5,
                               atol=1e-6)
    assert len(list((wd / L.path("kg", "level6_shards")).glob("*.zarr"))) == 2


def test_missing_input_names_the_snakemake_target(chain):
    wd, L, errors = chain
    rc, err = errors["level2"]
    assert rc == 1 and L.path("yeast", "annotation.parquet") in err and "snakemake --configfile" in err
    assert "annotate" in err
    rc, err = errors["level6"]
    assert rc == 1 and L.path("kg", "genotypes.zarr") in err and " genotypes`" in err
    rc, err = errors["level4"]  # level1 exists by then; the Hi-C graph does not
    assert rc == 1 and L.path("yeast", "hic", "chrIII.zarr") in err and " hic`" in err
    rc, err = errors["out"]
    assert rc == 1 and "--out" in err and not (wd / "x.zarr").exists()


def _snakemake(wd, *args):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(wd),
           "--configfile", str(wd / "config.yaml"), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-6000:]
    return proc.stdout + proc.stderr


def test_snakemake_agrees_with_the_cli(chain):
    """The CLI wrote every path the rules would (nothing to do), and the rules rerun give the same stores."""
    wd, L, _ = chain
    assert "Nothing to be done" in _snakemake(wd, "-n", "level5", "level6")
    stores = [L.path("yeast", "level4", "chrI.zarr"), L.path("yeast", "level5.zarr"), L.path("kg", "level6.zarr")]
    cli = {p: xr.open_zarr(wd / p).load() for p in stores}
    _snakemake(wd, "--forcerun", "level4_contig", "level5_genome", "level6_shard", "level6_gather", "--",
               "level5", "level6")
    for p in stores:
        a, b = cli[p], xr.open_zarr(wd / p).load()
        assert b.attrs["model"] == a.attrs["model"]  # really rewritten by the rule, with the same weights
        xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
        timing = {"layout", "info"}  # level 5 layout cache hit/miss, level 6 individuals per second
        assert {k: v for k, v in a.attrs.items() if k not in timing} == \
            {k: v for k, v in b.attrs.items() if k not in timing}
    assert xr.open_zarr(wd / L.path("yeast", "level5.zarr")).attrs["layout"]["cache"] == "disk"  # the CLI's cache


def test_optional_inputs_follow_the_rules(tmp_path):
    """level4 reads level3 only with gene_context (auto + annotation, or true); level6 reads level5 when the
    cohort's reference has Hi-C (rules level4_contig / level6_shard)."""
    from genoattn.cli_jobs import Context, build_jobs, check_inputs
    from genoattn.config import validate_config

    def ctx(gene_context, annotation):
        ref = {"fasta": str(YEAST_FASTA), "hic": str(YEAST_COOL), "include": CONTIGS}
        if annotation:
            ref["annotation"] = str(YEAST_GTF)
        cfg = validate_config({"references": {"yeast": ref}, "results": str(tmp_path / "res"),
                               "cohorts": {"kg": {"vcf": str(VCF_1KG), "reference": "yeast"}},
                               "levels": {"level4": {"gene_context": gene_context}}})
        return Context(cfg, "c.yaml")

    l3 = str(tmp_path / "res" / "yeast" / "level3" / "chrIII.zarr")
    for setting, annotation, wanted in (("auto", True, True), ("auto", False, False), (False, True, False),
                                        (True, True, True)):
        (job,) = build_jobs("level4", ctx(setting, annotation), contig="chrIII")
        assert (l3 in job.job.inputs.values()) is wanted, (setting, annotation)
    from genoattn.config import ConfigError

    with pytest.raises(ConfigError, match="levels.level4.gene_context: true needs level 3"):
        ctx(True, False)  # refused before any job, naming the key and the fix
    c = ctx("auto", False)
    shard = build_jobs("level6", c, shard=0)
    level5 = str(tmp_path / "res" / "yeast" / "level5.zarr")
    assert len(shard) == 1 and shard[0].job.inputs["level5"] == level5
    with pytest.raises(FileNotFoundError, match="snakemake --configfile c.yaml genotypes"):
        check_inputs(shard, c)
    with pytest.raises(ValueError, match="--contig 'chrII' is not a selected contig"):
        build_jobs("level2", ctx("auto", True), contig="chrII")
