"""Level 3 (exons, genes): pooling weights, padding invariance, strand symmetry, store contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from demo_paths import section
from genoattn import alphabet
from genoattn import transcripts as tx
from genoattn.io.store import open_group
from genoattn.levels import codon as L2
from genoattn.levels import exon as L3
from tests._levels23 import base_config, contig_tokens, write_level1_like, yeast_annotation
from tests.test_level2 import _level1_for, _piece


@pytest.fixture(scope="module")
def chr1(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("l3")
    ann = yeast_annotation()
    tokens = contig_tokens("chrI")
    l1, _, _ = _level1_for(tmp, "chrI", ann, "chrI", tokens, seed=7)
    cfg = base_config()
    L2.run(ann, l1, str(tmp / "l2.zarr"), "chrI", cfg)
    qc = L3.run(ann, l1, str(tmp / "l2.zarr"), str(tmp / "l3.zarr"), "chrI", cfg)
    return tmp, ann, l1, cfg, qc


def test_store_contract(chr1):
    import xarray as xr

    tmp, ann, _, _, qc = chr1
    ds = xr.open_zarr(tmp / "l3.zarr")
    assert ds["exon_embedding"].dims == ("exon", "feature") and ds.sizes["feature"] == 32
    assert ds["gene_embedding"].dims == ("gene", "feature")
    for c in ("gene_id", "gene_name", "gene_biotype", "gene_strand", "gene_start", "gene_end"):
        assert c in ds["gene_embedding"].coords
    for c in ("exon_id", "exon_transcript_id", "exon_gene_id", "exon_start", "exon_end", "exon_strand", "exon_rank"):
        assert c in ds["exon_embedding"].coords
    assert ds.attrs["level"] == "level3" and "qc" in ds.attrs
    l2 = xr.open_zarr(tmp / "l2.zarr")
    np.testing.assert_array_equal(ds["exon_id"].values, l2["exon_id"].values)
    genes = ann[(ann["feature"] == "gene") & (ann["contig"] == "chrI")].set_index("gene_id")
    assert set(ds["gene_id"].values) == set(genes.index)  # coding and non-coding genes kept
    gid = ds["gene_id"].values
    np.testing.assert_array_equal(ds["gene_start"].values, genes.loc[gid, "start"].to_numpy())
    np.testing.assert_array_equal(ds["gene_end"].values, genes.loc[gid, "end"].to_numpy())
    emb = ds["gene_embedding"].values
    assert np.isfinite(emb).all() and emb.std(0).mean() > 0.05
    assert set(ds["gene_biotype"].values) >= {"protein_coding", "tRNA"}
    assert np.all(ds["exon_n_tokens"].values > 0)


def test_pooling_weights_sum_to_one_and_padding_invariance(chr1):
    tmp, ann, l1, cfg, _ = chr1
    model = tx.build_transcripts(ann, select="canonical", contigs=["chrI"])
    exons = tx.exon_table(model.transcripts)
    inp = L3.exon_inputs(exons, L3.Level2Codons(tmp / "l2.zarr"), L2.Level1Bases(l1), (0, 25))
    torch.manual_seed(0)
    m = L3.ExonAttention(32, 16, 32, 4).eval().double()
    d = {k: (v.double() if v.is_floating_point() else v) for k, v in inp.items()}
    E = d["exon_type"].shape[0]
    with torch.no_grad():
        pooled, w = m.pool_exons(d["codon_emb"], d["codon_seg"], d["base_emb"], d["base_comp"], d["base_seg"], E)
        seg = torch.cat([d["codon_seg"], d["base_seg"]])
        sums = torch.zeros(E, dtype=w.dtype).index_add(0, seg, w)
        torch.testing.assert_close(sums, torch.ones(E, dtype=w.dtype))
        assert (w > 0).all() and w.std() > 0  # really weighted, not uniform
        # padding: random tokens with mask False, inserted at random places, change nothing
        g = torch.Generator().manual_seed(3)
        n_pad = 500
        ce = torch.cat([d["codon_emb"], 10 * torch.randn(n_pad, 32, generator=g, dtype=torch.float64)])
        cs = torch.cat([d["codon_seg"], torch.randint(0, E, (n_pad,), generator=g)])
        mask = torch.cat([torch.ones(len(d["codon_seg"]), dtype=torch.bool), torch.zeros(n_pad, dtype=torch.bool),
                          torch.ones(len(d["base_seg"]), dtype=torch.bool)])
        pooled2, w2 = m.pool_exons(ce, cs, d["base_emb"], d["base_comp"], d["base_seg"], E, mask)
        torch.testing.assert_close(pooled2, pooled)
        assert float(w2[~mask].abs().max()) == 0.0
        out1 = m(**d)
        d2 = {**d, "codon_emb": ce, "codon_seg": cs}
        out2 = m(**d2, mask=mask)
        torch.testing.assert_close(out1[0], out2[0])
        torch.testing.assert_close(out1[1], out2[1])


def test_batching_does_not_change_outputs(chr1, tmp_path):
    """Other transcripts packed in the same varlen call (or not) never change an output."""
    tmp, ann, l1, cfg, _ = chr1
    cfg2 = base_config()
    cfg2["levels"]["level3"]["tokens_per_call"] = 1  # one transcript per call
    L3.run(ann, l1, str(tmp / "l2.zarr"), str(tmp_path / "one.zarr"), "chrI", cfg2)
    a, b = open_group(tmp / "l3.zarr"), open_group(tmp_path / "one.zarr")
    for name in ("exon_embedding", "transcript_embedding", "gene_embedding"):
        np.testing.assert_allclose(a[name][:], b[name][:], atol=1e-5)
    # float16 codon storage: level 3 reads it and stays close
    cfg3 = base_config(codon_dtype="float16")
    L2.run(ann, l1, str(tmp_path / "l2h.zarr"), "chrI", cfg3)
    assert open_group(tmp_path / "l2h.zarr")["codon_embedding"].dtype == np.float16
    L3.run(ann, l1, str(tmp_path / "l2h.zarr"), str(tmp_path / "h.zarr"), "chrI", cfg3)
    np.testing.assert_allclose(open_group(tmp_path / "h.zarr")["gene_embedding"][:], a["gene_embedding"][:], atol=0.05)


def test_minus_strand_gene_equals_reverse_complement_levels_2_3(tmp_path):
    """Real minus-strand gene with synthetic UTRs (real flanking bases) and a split codon: levels
    2 and 3 give the same exon and gene embeddings on the plus strand of the reverse-complemented
    window-aligned piece."""
    ann = yeast_annotation()
    rows, lo, hi = _piece(ann, "chrIII", "YCL012C_mRNA")
    rows = rows.copy()
    ex = rows["feature"] == "exon"
    first = ex & (rows["start"] == rows.loc[ex, "start"].max())  # 5' exon on the minus strand
    last = ex & (rows["start"] == rows.loc[ex, "start"].min())
    rows.loc[first, "end"] += 37  # 5' UTR
    rows.loc[last, "start"] -= 53  # 3' UTR
    g = rows["feature"].isin(["gene", "transcript"])
    rows.loc[g, "start"] -= 53
    rows.loc[g, "end"] += 37
    n = hi - lo
    tokens = contig_tokens("chrIII")[lo:hi]
    fwd = rows.assign(start=rows["start"] - lo, end=rows["end"] - lo, contig="piece")
    rc = rows.assign(start=n - (rows["end"] - lo), end=n - (rows["start"] - lo), strand="+", contig="piece_rc")
    l1f, pos, emb = _level1_for(tmp_path, "fwd", fwd, "piece", tokens, seed=9, dtype=np.float32)
    l1r = write_level1_like(tmp_path / "rc.l1.zarr", "piece_rc", alphabet.reverse_complement(tokens),
                            (n - 1 - pos)[::-1], emb[::-1])
    cfg = base_config()
    for name, a, l1, c in (("f", fwd, l1f, "piece"), ("r", rc, l1r, "piece_rc")):
        L2.run(a, l1, str(tmp_path / f"{name}2.zarr"), c, cfg)
        L3.run(a, l1, str(tmp_path / f"{name}2.zarr"), str(tmp_path / f"{name}3.zarr"), c, cfg)
    a, b = open_group(tmp_path / "f3.zarr"), open_group(tmp_path / "r3.zarr")
    assert list(a["exon_type"][:]) == [tx.EXON_TYPES.index("utr5_cds"), tx.EXON_TYPES.index("cds_utr3")]
    for name in ("exon_embedding", "transcript_embedding", "gene_embedding"):
        np.testing.assert_allclose(a[name][:], b[name][:], atol=3e-5)
    np.testing.assert_array_equal(a["gene_end"][:] - a["gene_start"][:], b["gene_end"][:] - b["gene_start"][:])
    assert a["gene_strand"][:][0] == "-" and b["gene_strand"][:][0] == "+"


def test_stale_level2_is_an_error(chr1, tmp_path):
    tmp, ann, l1, cfg, _ = chr1
    cfg2 = base_config()
    cfg2["levels"]["annotation"]["transcripts"] = "all"
    bad = ann.copy()
    bad = bad[~((bad["contig"] == "chrI") & (bad["gene_id"] == bad.loc[bad["contig"] == "chrI", "gene_id"].iloc[0]))]
    with pytest.raises(ValueError, match="stale level-2"):
        L3.run(bad, l1, str(tmp / "l2.zarr"), str(tmp_path / "x.zarr"), "chrI", cfg2)
    assert not (tmp_path / "x.zarr").exists()


def test_module_is_trainable():
    torch.manual_seed(0)
    m = L3.ExonAttention(8, 8, 16, 4)
    out_e, out_t = m(torch.randn(30, 8), torch.randint(0, 5, (30,)), torch.randn(40, 8), torch.rand(40, 4),
                     torch.randint(0, 5, (40,)), torch.randint(0, 7, (5,)), torch.arange(5), torch.arange(5).flip(0),
                     torch.tensor([0, 2, 5]))
    (out_e.sum() + out_t.pow(2).sum()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def _tokens_store(path, contig, tokens):
    from genoattn.io.store import atomic_store

    with atomic_store(path, attrs={"level": "tokens", "inputs": {}}) as w:
        g = w.subgroup(contig, attrs={"length": int(len(tokens)), "contig": contig})
        g.write("tokens", tokens, dims=("position",))
        g.write("softmask", np.zeros(len(tokens), bool), dims=("position",))
    return str(path)


def test_minus_strand_through_real_level1(tmp_path):
    """Levels 1 -> 2 -> 3 with the real level-1 module (strand-symmetric, window-aligned piece of
    real chrIII): the minus-strand gene equals the same gene on the plus strand of the reverse
    complement."""
    pytest.importorskip("genoattn.levels.level1")
    from genoattn.io.annotation import write_annotation
    from genoattn.levels import level1

    ann = yeast_annotation()
    rows, lo, hi = _piece(ann, "chrIII", "YCL012C_mRNA")
    n = hi - lo
    assert n % 512 == 0
    tokens = contig_tokens("chrIII")[lo:hi]
    fwd = rows.assign(start=rows["start"] - lo, end=rows["end"] - lo, contig="piece")
    rc = rows.assign(start=n - (rows["end"] - lo), end=n - (rows["start"] - lo), strand="+", contig="piece_rc")
    l1cfg = section("levels.level1", window=512, stride=512, dim=16, heads=2, reverse_complement=True,
                    exon_base_dtype="float32", batch_size=4, seed=1, checkpoint=None)
    cfg = base_config()
    outs = {}
    for name, a, contig, tok in (("f", fwd, "piece", tokens), ("r", rc, "piece_rc", alphabet.reverse_complement(tokens))):
        ann_path = tmp_path / f"{name}.parquet"
        write_annotation(a.reset_index(drop=True), ann_path, {"source": "test", "format": "gtf", "sha256": ""})
        tok_path = _tokens_store(tmp_path / f"{name}.tokens.zarr", contig, tok)
        level1.run(tok_path, contig, str(tmp_path / f"{name}1.zarr"), l1cfg, annotation_path=str(ann_path),
                   device="cpu")
        L2.run(str(ann_path), str(tmp_path / f"{name}1.zarr"), str(tmp_path / f"{name}2.zarr"), contig, cfg)
        L3.run(str(ann_path), str(tmp_path / f"{name}1.zarr"), str(tmp_path / f"{name}2.zarr"),
               str(tmp_path / f"{name}3.zarr"), contig, cfg)
        outs[name] = (open_group(tmp_path / f"{name}2.zarr"), open_group(tmp_path / f"{name}3.zarr"))
    (a2, a3), (b2, b3) = outs["f"], outs["r"]
    assert a2["codon_embedding"].shape[0] > 300
    np.testing.assert_allclose(a2["codon_embedding"][:], b2["codon_embedding"][:], atol=1e-4)
    for name in ("exon_embedding", "transcript_embedding", "gene_embedding"):
        np.testing.assert_allclose(a3[name][:], b3[name][:], atol=1e-4)


@pytest.mark.workflow
def test_levels_2_3_through_the_workflow_on_demo_chrI(tmp_path):
    """`snakemake level3` on the demo genome restricted to chrI (real level 1 included)."""
    import subprocess
    import sys

    import pandas as pd
    import xarray as xr
    import yaml

    from tests._levels23 import FASTA, GTF, ROOT
    from tests.test_transcripts import translate

    cfg = {"references": {"yeast": {"fasta": str(FASTA), "annotation": str(GTF), "include": ["chrI"]}},
           "levels": {"level1": {"dim": 32, "heads": 2}}}  # small level 1; levels 2-3 at their defaults
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(tmp_path / "config.yaml"), "--cores", "2"]
    proc = subprocess.run(cmd + ["level3"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-5000:]
    res = tmp_path / "results" / "yeast"
    l2 = xr.open_zarr(res / "level2" / "chrI.zarr")
    l3 = xr.open_zarr(res / "level3" / "chrI.zarr")
    assert l2.sizes["feature"] == 128 and l3.sizes["feature"] == 256  # the defaults
    assert l2.attrs["qc"]["codons"] == l2.sizes["codon"] and "qc" in l3.attrs
    # annotated-frame codons of the workflow's level-2 store translate on the workflow's tokens
    tokens = xr.open_zarr(res / "tokens.zarr", group="chrI")["tokens"].values
    bpos = l2["codon_base_position"].values
    cexon = l2["codon_exon"].values
    minus = l2["exon_strand"].values[cexon] == "-"
    b = tokens[bpos]
    aa = translate(np.where(minus[:, None], alphabet.COMPLEMENT[b], b))
    tid = l2["exon_transcript_id"].values[cexon]
    f0 = l2["codon_frame"].values == 0
    n = 0
    for t in pd.unique(tid[f0]):
        p = aa[f0 & (tid == t)].tobytes().decode()
        assert p[0] == "M" and p[-1] == "*" and "*" not in p[:-1], t
        n += 1
    ann = pd.read_parquet(res / "annotation.parquet")
    chr1 = ann[ann["contig"] == "chrI"]
    assert n == chr1.loc[(chr1["feature"] == "CDS"), "transcript_id"].nunique()
    assert set(l3["gene_id"].values) == set(chr1.loc[chr1["feature"] == "gene", "gene_id"])
    assert np.isfinite(l3["gene_embedding"].values).all()
    for lvl in ("level2", "level3"):
        assert (res / "logs" / lvl / "chrI.log").stat().st_size > 0
        assert (res / "benchmarks" / lvl / "chrI.tsv").exists()
    dry = subprocess.run(cmd + ["level3", "-n"], capture_output=True, text=True)
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_contig_without_transcripts_gives_empty_stores(tmp_path):
    import xarray as xr

    ann = yeast_annotation()
    ann = ann[ann["contig"] == "chrI"]
    tokens = contig_tokens("chrVI")
    l1 = write_level1_like(tmp_path / "l1.zarr", "chrVI", tokens, np.zeros(0, np.int64), np.zeros((0, 16), np.float32))
    cfg = base_config()
    assert L2.run(ann, l1, str(tmp_path / "l2.zarr"), "chrVI", cfg)["codons"] == 0
    L3.run(ann, l1, str(tmp_path / "l2.zarr"), str(tmp_path / "l3.zarr"), "chrVI", cfg)
    l2, l3 = xr.open_zarr(tmp_path / "l2.zarr"), xr.open_zarr(tmp_path / "l3.zarr")
    assert l2["codon_embedding"].shape == (0, 32) and l2["exon_codon_offset"].values.tolist() == [0]
    assert l3["gene_embedding"].shape == (0, 32) and l3.sizes["exon"] == 0
