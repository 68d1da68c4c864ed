"""Level 6 (genoattn.levels.cohort) on real 1000 Genomes chr20 genotypes (small regions/sample subsets,
small models); the level-5 store used for the context test is SYNTHETIC (random embeddings)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from demo_paths import VCF_1KG
from genoattn.io.samples import vcf_samples
from genoattn.io.store import atomic_store, mark_coordinates, open_group
from genoattn.io.vcf import convert_vcf
from genoattn.ld import write_ld_blocks
from genoattn.levels import cohort
from genoattn.config import defaults
from genoattn.levels.cohort import CohortModel, embed_samples, gather, genotype_codes, local_global, run_shard


def _opts(**kw):
    o = defaults("levels.level6")
    o.update({"dim": 32, "heads": 4, "window": 16, "n_global": 2, "mlp_ratio": 2, "batch_size": 3,
              "block_embedding": True, "seed": int(np.random.default_rng().integers(1000))})
    o.update(kw)
    return o


def _ld_opts(**kw):
    return {**defaults("levels.level6")["ld_blocks"], **kw}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    rng = np.random.default_rng()
    d = tmp_path_factory.mktemp("l6")
    start = int(rng.integers(1_000_000, 3_700_000))
    samples = list(rng.choice(vcf_samples(VCF_1KG), size=11, replace=False))
    convert_vcf(str(VCF_1KG), str(d / "g.zarr"), samples, regions=[f"20:{start}-{start + 60_000}"])
    write_ld_blocks(str(d / "g.zarr"), str(d / "ld.zarr"), _ld_opts(min_variants=3, max_variants=40))
    return d


def _run(d, name, opts, level5=None):
    S = open_group(d / "g.zarr")["sample_id"].shape[0]
    n = -(-S // opts["samples_per_shard"])
    shards = []
    for k in range(n):
        p = d / name / f"{k}.zarr"
        run_shard(str(d / "g.zarr"), str(d / "ld.zarr"), str(p), k, opts, level5=level5, device="cpu")
        shards.append(str(p))
    out = d / f"{name}.zarr"
    gather(shards, str(d / "g.zarr"), str(d / "ld.zarr"), str(out), opts)
    return out


@pytest.mark.parametrize("windows", ["contigs", "ld_blocks"])
def test_sharded_and_unsharded_runs_give_the_same_embeddings(stores, windows):
    opts = _opts(windows=windows)
    one = _run(stores, f"one_{windows}", {**opts, "samples_per_shard": 100, "batch_size": 11})
    many = _run(stores, f"many_{windows}", {**opts, "samples_per_shard": 4, "batch_size": 3})
    a, b = xr.open_zarr(one), xr.open_zarr(many)
    assert a.attrs["n_shards"] == 1 and b.attrs["n_shards"] == 3
    assert list(a["sample_id"].values) == list(b["sample_id"].values) == \
        [str(s) for s in open_group(stores / "g.zarr")["sample_id"][:]]
    np.testing.assert_allclose(a["sample_embedding"].values, b["sample_embedding"].values, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(a["block_embedding"].values, b["block_embedding"].values, rtol=1e-4, atol=1e-5)
    assert a["sample_embedding"].dims == ("samples", "feature")
    assert a["block_embedding"].dims == ("samples", "ld_block", "feature")
    assert "sample_id" in a.coords and "ld_block_bp_start" in a.coords
    emb = a["sample_embedding"].values
    assert np.isfinite(emb).all() and np.ptp(emb, axis=0).max() > 0  # individuals differ
    assert a.attrs["model"]["weights"] == "seeded-init" and a.attrs["level"] == "level6"


def test_an_individual_embedding_depends_only_on_its_own_genotypes(stores):
    opts = _opts()
    full, _, _ = embed_samples(str(stores / "g.zarr"), str(stores / "ld.zarr"), (0, 6), opts, device="cpu")
    alone, _, _ = embed_samples(str(stores / "g.zarr"), str(stores / "ld.zarr"), (4, 5), opts, device="cpu")
    np.testing.assert_allclose(full["sample_embedding"][4], alone["sample_embedding"][0], rtol=1e-4, atol=1e-5)


def test_chunked_local_global_equals_the_reference_with_segments():
    rng = np.random.default_rng()
    G, N, H, D, W = 3, int(rng.integers(300, 700)), 2, 8, int(rng.integers(4, 60))
    q, k, v = (torch.randn(2, H, G + N, D, dtype=torch.float64) for _ in range(3))
    seg = torch.from_numpy(np.sort(rng.integers(0, 6, N)))
    from genoattn import kernels
    ref = kernels.local_global_attention(q, k, v, W, G, torch.cat([torch.full((G,), -1), seg]), backend="reference")
    kernels.set_default_backend("reference")
    try:
        out = local_global(q, k, v, W, G, seg, query_block=int(rng.integers(16, 128)))
    finally:
        kernels.set_default_backend("auto")
    torch.testing.assert_close(out, ref)


def test_genotype_codes():
    gt = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [2, 1], [-1, 0], [-1, -1], [0, -2], [3, -2], [-1, -2]], np.int8)
    assert genotype_codes(gt).tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 5, 3]


def test_level5_context_is_used_when_present(stores, tmp_path):
    """SYNTHETIC level-5 store (random embeddings, 10 kb bins on contig '20') -> context changes embeddings."""
    g = open_group(stores / "g.zarr")
    pos0 = g["variant_position"][:] - 1
    lo, hi = int(pos0.min()) // 10_000 * 10_000, int(pos0.max()) + 1
    starts = np.arange(lo, hi, 10_000)
    keep = starts[: max(1, len(starts) // 2)]  # only the first half of the region has bins
    with atomic_store(tmp_path / "level5.zarr", attrs={"level": "level5", "synthetic": True}) as w:
        w.write("embedding", np.random.default_rng().normal(size=(len(keep), 24)).astype(np.float32),
                dims=("bin", "feature"))
        w.write("chrom", np.array(["20"] * len(keep), dtype=object), dims=("bin",))
        w.write("start", keep, dims=("bin",))
        w.write("end", keep + 10_000, dims=("bin",))
        mark_coordinates(w, "chrom", "start", "end")
    opts = _opts()
    with_ctx, ident, info = embed_samples(str(stores / "g.zarr"), str(stores / "ld.zarr"), (0, 3), opts,
                                          level5=str(tmp_path / "level5.zarr"), device="cpu")
    expected = int((pos0 < keep[-1] + 10_000).sum())
    assert info["variants_with_context"] == expected
    without, _, info0 = embed_samples(str(stores / "g.zarr"), str(stores / "ld.zarr"), (0, 3), opts, device="cpu")
    assert info0["variants_with_context"] == 0
    assert not np.allclose(with_ctx["sample_embedding"], without["sample_embedding"])


def test_module_is_trainable():
    m = CohortModel(dim=16, heads=2, window=8, n_global=2, mlp_ratio=2)
    V = 50
    codes = torch.randint(0, 6, (3, V))
    base = m.variant_tokens(torch.randint(0, 17, (V,)), torch.randn(V, 32))
    glob, tok = m(codes, base, torch.zeros(V, dtype=torch.long), query_block=16)
    (glob.square().mean() + tok.square().mean()).backward()
    grads = [p.grad for p in m.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert m.genotype.weight.grad.abs().sum() > 0


def test_missing_shard_and_stale_ld_blocks_are_errors(stores, tmp_path):
    opts = _opts(samples_per_shard=4)
    with pytest.raises(ValueError, match="shard 7 does not exist"):
        run_shard(str(stores / "g.zarr"), str(stores / "ld.zarr"), str(tmp_path / "x.zarr"), 7, opts)
    p = tmp_path / "s0.zarr"
    run_shard(str(stores / "g.zarr"), str(stores / "ld.zarr"), str(p), 0, opts, device="cpu")
    with pytest.raises(ValueError, match="a shard is missing"):
        gather([str(p)], str(stores / "g.zarr"), str(stores / "ld.zarr"), str(tmp_path / "l6.zarr"), opts)
    assert not (tmp_path / "l6.zarr").exists()


def test_shard_count_comes_from_the_sample_sheet_or_the_vcf_header(tmp_path):
    from genoattn.config import validate_config
    from demo_paths import YEAST_FASTA

    sheet = tmp_path / "s.tsv"
    pick = vcf_samples(VCF_1KG)[:7]
    sheet.write_text("sample_id\tcohort\n" + "".join(f"{s}\ta\n" for s in pick))
    cfg = validate_config({"references": {"y": {"fasta": str(YEAST_FASTA)}}, "samples": str(sheet),
                           "cohorts": {"a": {"vcf": str(VCF_1KG)}, "b": {"vcf": str(VCF_1KG)}},
                           "levels": {"level6": {"samples_per_shard": 3}}}, check_files=False)
    from genoattn.workflow import Layout

    L = Layout(cfg)
    assert L.shard_count("a") == 3
    assert L.shard_count("b") == 100


# -- workflow: `snakemake genotypes level6` on the two demo cohorts (small regions and model) ----------------
@pytest.mark.workflow
def test_workflow_genotypes_and_level6_on_the_demo_cohorts(tmp_path):
    import subprocess
    import sys

    import yaml

    from demo_paths import DEMO, ROOT, YEAST_FASTA

    pick = vcf_samples(VCF_1KG)[10:18]
    (tmp_path / "samples.tsv").write_text("sample_id\tcohort\tbatch\n" +
                                          "".join(f"{s}\tphased\t{i % 2}\n" for i, s in enumerate(pick)))
    region = ["20:1500000-1600000"]
    cfg = {"references": {"yeast_R64": {"fasta": str(YEAST_FASTA)}},
           "samples": str(tmp_path / "samples.tsv"),
           "cohorts": {"phased": {"vcf": str(VCF_1KG), "regions": region, "filters": {"maf": 0.05}},
                       "unphased": {"vcf": str(DEMO / "1kg_chr20" / "unphased.vcf.gz"), "regions": region,
                                    "split_bp": 40_000}},  # three conversion jobs, then joined
           "levels": {"level6": {"dim": 32, "heads": 4, "window": 32, "n_global": 2, "samples_per_shard": 64,
                                 "batch_size": 16, "block_embedding": True, "windows": "ld_blocks"}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(tmp_path / "config.yaml"), "--cores", "2", "genotypes", "level6"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-6000:]
    res = tmp_path / "results"
    ph = xr.open_zarr(res / "phased" / "level6.zarr")
    assert list(ph["sample_id"].values) == pick and ph.attrs["n_shards"] == 1
    assert "covariate_batch" in ph.coords and ph["covariate_batch"].values.tolist() == [i % 2 for i in range(8)]
    un = xr.open_zarr(res / "unphased" / "level6.zarr")
    assert un.sizes["samples"] == 203 and un.attrs["n_shards"] == 4  # no rows in the sheet: every VCF sample
    assert len(list((res / "unphased" / "level6_shards").glob("*.zarr"))) == 4
    for name, ds in (("phased", ph), ("unphased", un)):
        g = xr.open_zarr(res / name / "genotypes.zarr")
        fc = g.attrs["filter_counts"]
        assert fc["records"] == fc["kept"] + sum(fc["dropped"].values()) and fc["kept"] == g.sizes["variants"]
        assert np.isfinite(ds["sample_embedding"].values).all()
        assert ds["block_embedding"].shape[:2] == (ds.sizes["samples"], ds.sizes["ld_block"])
        assert int(ds["ld_block_end"].values[-1]) == g.sizes["variants"]
        assert (res / name / "logs" / "genotypes.log").stat().st_size > 0
        # provenance carried up: the level-6 and LD-block stores name the VCF the genotypes came from
        vcf = str(VCF_1KG) if name == "phased" else str(DEMO / "1kg_chr20" / "unphased.vcf.gz")
        assert vcf in g.attrs["inputs"] and ds.attrs["inputs"] == g.attrs["inputs"]
        assert xr.open_zarr(res / name / "ld_blocks.zarr").attrs["inputs"] == g.attrs["inputs"]
    # the split cohort: three pieces joined into the store one conversion writes, then removed (temporary)
    assert "genotypes_part" in proc.stdout + proc.stderr
    parts = res / "unphased" / "genotypes_parts"
    assert not parts.exists() or not list(parts.iterdir())
    whole = tmp_path / "whole.zarr"
    convert_vcf(str(DEMO / "1kg_chr20" / "unphased.vcf.gz"), str(whole), regions=region)
    a, b = open_group(whole), open_group(res / "unphased" / "genotypes.zarr")
    assert b.attrs["parts"] == 3 and sorted(a.array_keys()) == sorted(b.array_keys())
    for name in a.array_keys():
        assert np.array_equal(a[name][:], b[name][:]), name
    assert ph.attrs["level5"] is None  # reference: null -> learned no-context embedding
    dry = subprocess.run(cmd + ["-n"], capture_output=True, text=True)
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_level6_module_agrees_across_kernel_backends():
    """cpu, triton (TRITON_INTERPRET=1, in a subprocess) and chunked reference paths give one answer."""
    import os
    import subprocess
    import sys

    code = """
import torch, numpy as np
from genoattn import kernels
from genoattn.levels.cohort import CohortModel
m = CohortModel(dim=32, heads=2, window=8, n_global=2, mlp_ratio=2).eval()
V = int(np.random.default_rng().integers(40, 90)); cut = V // 3
codes = torch.randint(0, 6, (2, V)); seg = torch.from_numpy(np.repeat([0, 1], [cut, V - cut]))
out = {}
with torch.no_grad():
    base = m.variant_tokens(torch.randint(0, 17, (V,)), torch.randn(V, 32))
    for b in ('cpu', 'triton', 'reference'):
        kernels.set_default_backend(b)
        out[b] = m(codes, base, seg, query_block=16)
for b in ('triton', 'reference'):
    for x, y in zip(out['cpu'], out[b]):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)
print('ok')
"""
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


@pytest.mark.workflow
def test_workflow_dag_errors_and_level5_dependency(tmp_path):
    """Dry runs: a cohort naming a reference with Hi-C waits for its level5.zarr; a sample-sheet mismatch
    and a VCF contig the reference lacks stop the run before any job, with the names and the fix."""
    import subprocess
    import sys

    import yaml

    from demo_paths import ROOT, YEAST_COOL, YEAST_FASTA

    def smk(cfg, *args):
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
        cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
               "--configfile", str(tmp_path / "config.yaml"), "--cores", "1", *args]
        return subprocess.run(cmd, capture_output=True, text=True)

    base = {"references": {"yeast_R64": {"fasta": str(YEAST_FASTA), "hic": str(YEAST_COOL)}},
            "cohorts": {"kg": {"vcf": str(VCF_1KG), "reference": "yeast_R64", "regions": ["20:1000000-1010000"]}}}
    # human '20' aliased onto yeast chrI only to build the DAG (dry run): never a real analysis
    aliased = yaml.safe_load(yaml.safe_dump(base))
    aliased["cohorts"]["kg"]["contig_aliases"] = {"20": "chrI"}
    dry = smk(aliased, "-n", "level6")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "level5_genome" in dry.stdout and "level6_shard" in dry.stdout

    (tmp_path / "s.tsv").write_text("sample_id\tcohort\nHG00096\tkg\nNOT_A_SAMPLE\tkg\n")
    bad = smk({**aliased, "samples": str(tmp_path / "s.tsv")}, "-n", "level6")
    assert bad.returncode != 0 and "NOT_A_SAMPLE" in bad.stdout + bad.stderr

    run = smk(base, "genotypes")
    out = run.stdout + run.stderr
    assert run.returncode != 0 and "not in the reference" in out and "contig_aliases" in out
    assert not (tmp_path / "results" / "kg" / "genotypes.zarr").exists()
