"""Level 2 (codons, three frames): store contract, strand symmetry on real sequence, packing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from demo_paths import section
from genoattn import alphabet
from genoattn import transcripts as tx
from genoattn.io.store import open_group
from genoattn.levels import codon as L2
from tests._levels23 import (base_config, contig_tokens, exon_union_positions, write_level1_like,
                             yeast_annotation)
from tests.test_transcripts import translate


def _level1_for(tmp_path, name, ann, contig, tokens, dim=16, seed=0, dtype=np.float16):
    pos = exon_union_positions(ann, contig)
    emb = np.random.default_rng(seed).standard_normal((len(pos), dim)).astype(np.float32)
    return write_level1_like(tmp_path / f"{name}.l1.zarr", contig, tokens, pos, emb, dtype=dtype), pos, emb


@pytest.fixture(scope="module")
def chr1_level2(tmp_path_factory):
    """Level 2 of the real chrI (real annotation and tokens; synthetic level-1 embeddings)."""
    tmp = tmp_path_factory.mktemp("l2")
    ann = yeast_annotation()
    tokens = contig_tokens("chrI")
    l1, _, _ = _level1_for(tmp, "chrI", ann, "chrI", tokens, seed=11)
    out = tmp / "chrI.zarr"
    # float32 storage so the exon summaries can be recomputed exactly from the stored codons
    qc = L2.run(ann, l1, str(out), "chrI", base_config(codon_dtype="float32"))
    return out, qc, tokens


def test_store_contract_and_translation(chr1_level2):
    import xarray as xr

    out, qc, tokens = chr1_level2
    ds = xr.open_zarr(out)
    assert ds["codon_embedding"].dims == ("codon", "feature")
    assert ds["exon_embedding"].dims == ("exon", "feature")
    for c in ("codon_frame", "codon_exon", "codon_start"):
        assert c in ds["codon_embedding"].coords
    for c in ("exon_id", "exon_transcript_id", "exon_gene_id", "exon_start", "exon_end", "exon_strand", "exon_rank"):
        assert c in ds["exon_embedding"].coords
    assert ds.attrs["level"] == "level2" and "qc" in ds.attrs and ds.attrs["model"]["weights"] == "seeded-init"
    assert qc["codons"] == ds.sizes["codon"] > 10000
    g = open_group(out)
    emb = g["codon_embedding"][:]
    assert emb.dtype == np.float32 and np.isfinite(emb).all() and emb.std() > 0.1
    off = g["exon_codon_offset"][:]
    cexon = g["codon_exon"][:]
    assert off[0] == 0 and off[-1] == len(cexon) and np.all(np.diff(off) >= 0)
    np.testing.assert_array_equal(np.repeat(np.arange(len(off) - 1), np.diff(off)), cexon)
    # per-exon summary = mean of its codons; zero for exons without codons
    ex = g["exon_embedding"][:]
    for i in np.random.default_rng(0).choice(len(off) - 1, 20, replace=False):
        want = emb[off[i]:off[i + 1]].mean(0) if off[i + 1] > off[i] else np.zeros(emb.shape[1])
        np.testing.assert_allclose(ex[i], want, atol=1e-5)
    # annotated-frame codons from the store's base positions translate to M...*
    frame = g["codon_frame"][:]
    bpos = g["codon_base_position"][:]
    np.testing.assert_array_equal(bpos[:, 0], g["codon_start"][:])
    strand = g["exon_strand"][:]
    minus = strand[cexon] == "-"
    b = tokens[bpos]
    b = np.where(minus[:, None], alphabet.COMPLEMENT[b], b)
    aa = translate(b)
    tid = g["exon_transcript_id"][:][cexon]
    f0 = frame == 0
    n = 0
    for t in pd.unique(tid[f0]):
        p = aa[f0 & (tid == t)].tobytes().decode()
        assert p[0] == "M" and p[-1] == "*" and "*" not in p[:-1], t
        n += 1
    assert n == qc["coding_transcripts"] > 90


def _piece(ann, contig, tid, flank=512, window=512):
    rows = ann[(ann["transcript_id"] == tid) | ((ann["feature"] == "gene") &
                                                 (ann["gene_id"] == ann.loc[ann["transcript_id"] == tid, "gene_id"].iloc[0]))]
    lo = (int(rows["start"].min()) // window) * window - flank
    hi = -(-int(rows["end"].max()) // window) * window + flank
    return rows.copy(), lo, hi


def test_minus_strand_equals_plus_strand_of_reverse_complement(tmp_path):
    """A real minus-strand spliced gene (YCL012C, split codons) on a window-aligned piece of chrIII
    gives the same level-2 output as the same gene on the plus strand of the reverse-complemented
    piece (per-base embeddings strand-symmetric as the level-1 contract says)."""
    ann = yeast_annotation()
    rows, lo, hi = _piece(ann, "chrIII", "YCL012C_mRNA")
    assert set(rows["strand"]) == {"-"}
    tokens = contig_tokens("chrIII")[lo:hi]
    n = hi - lo
    fwd = rows.assign(start=rows["start"] - lo, end=rows["end"] - lo, contig="piece")
    rc = rows.assign(start=n - (rows["end"] - lo), end=n - (rows["start"] - lo), strand="+", contig="piece_rc")
    l1f, pos, emb = _level1_for(tmp_path, "fwd", fwd, "piece", tokens, seed=5, dtype=np.float32)
    pos_rc = (n - 1 - pos)[::-1]
    l1r = write_level1_like(tmp_path / "rc.l1.zarr", "piece_rc", alphabet.reverse_complement(tokens), pos_rc,
                            emb[::-1])
    cfg = base_config()
    L2.run(fwd, l1f, str(tmp_path / "fwd.zarr"), "piece", cfg)
    L2.run(rc, l1r, str(tmp_path / "rc.zarr"), "piece_rc", cfg)
    a, b = open_group(tmp_path / "fwd.zarr"), open_group(tmp_path / "rc.zarr")
    assert a["codon_embedding"].shape[0] == a.attrs["qc"]["codons"] > 100
    for name in ("codon_frame", "codon_exon", "exon_codon_offset", "exon_rank", "exon_id"):
        np.testing.assert_array_equal(a[name][:], b[name][:])
    np.testing.assert_array_equal(n - 1 - a["codon_start"][:], b["codon_start"][:])
    np.testing.assert_allclose(a["codon_embedding"][:], b["codon_embedding"][:], atol=2e-5)
    np.testing.assert_allclose(a["exon_embedding"][:], b["exon_embedding"][:], atol=2e-5)
    assert a["codon_embedding"][:].std() > 0.1
    # not trivially equal: the same codon positions read on the forward strand give other tokens
    assert not np.array_equal(alphabet.COMPLEMENT[tokens[a["codon_base_position"][:]]],
                              tokens[a["codon_base_position"][:]])


def test_packing_does_not_leak_between_exons():
    """One varlen call over many exons == one call per exon (no token sees another exon)."""
    ann = yeast_annotation()
    model = tx.build_transcripts(ann, select="all", contigs=["chrVI"])
    txs = [t for t in model.transcripts if t.coding][:12]
    exons = tx.exon_table(txs)
    codons = tx.codon_table(txs, exons)
    rng = np.random.default_rng(1)

    class FakeBases:
        dim, path = 8, "synthetic"
        position = np.unique(codons.base_position)
        token = rng.integers(1, 5, len(position)).astype(np.uint8)
        emb = rng.standard_normal((len(position), 8)).astype(np.float32)
        index = L2.Level1Bases.index
        def embeddings(self, idx):
            return self.emb[idx]

    torch.manual_seed(0)
    module = L2.CodonAttention(8, 16, 2).eval()
    with torch.no_grad():
        packed = L2.encode_codons(module, codons, FakeBases(), (0, len(exons)))
        single = torch.cat([L2.encode_codons(module, codons, FakeBases(), (i, i + 1)) for i in range(len(exons))])
    assert packed.shape[0] == len(codons)
    torch.testing.assert_close(packed, single, atol=1e-5, rtol=1e-5)


def test_long_exon_path_matches_varlen(monkeypatch):
    torch.manual_seed(2)
    T, H, D = 70, 2, 8
    q, k, v = (torch.randn(T, H, D, dtype=torch.float64) for _ in range(3))
    cu = torch.tensor([0, 5, 40, 41, 70])
    want = L2.packed_attention(q, k, v, cu, long_tokens=10_000)
    got = L2.packed_attention(q, k, v, cu, long_tokens=6)
    torch.testing.assert_close(got, want)


def test_module_is_trainable():
    torch.manual_seed(0)
    m = L2.CodonAttention(8, 16, 2)
    C = 20
    out = m(torch.randn(C, 3, 8), torch.rand(C, 3, 4), torch.randint(0, 3, (C,)), torch.arange(C),
            torch.tensor([0, 7, 20]))
    out.pow(2).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_bad_transcript_counted_not_crashing(tmp_path):
    ann = yeast_annotation()
    piece = ann[(ann["contig"] == "chrI") & (ann["end"] < 40000)].copy()  # the first genes of chrI
    # break one transcript: shift a CDS end so its length is no longer a multiple of 3
    i = piece.index[(piece["feature"] == "CDS") & (piece["transcript_id"] == "YAL067C_mRNA")][0]
    piece.loc[i, "end"] -= 1
    tokens = contig_tokens("chrI")
    l1, _, _ = _level1_for(tmp_path, "bad", piece, "chrI", tokens)
    qc = L2.run(piece, l1, str(tmp_path / "bad.zarr"), "chrI", base_config())
    assert qc["cds_not_multiple_of_3"] == 1
    g = open_group(tmp_path / "bad.zarr")
    assert g.attrs["skipped_transcripts"] == {"YAL067C_mRNA": "cds_not_multiple_of_3"}
    assert "YAL067C_mRNA" not in set(g["exon_transcript_id"][:])
    cfg = base_config()
    cfg["levels"]["annotation"]["on_error"] = "error"
    with pytest.raises(tx.AnnotationModelError, match="YAL067C_mRNA"):
        L2.run(piece, l1, str(tmp_path / "bad2.zarr"), "chrI", cfg)
    assert not (tmp_path / "bad2.zarr").exists()
    assert not list(tmp_path.glob("bad2.zarr.tmp-*"))


def test_levels_2_3_modules_on_the_triton_path_interpreted():
    """The Triton backend (run by the interpreter on CPU, in a subprocess so TRITON_INTERPRET is set
    before triton is imported) gives the reference outputs for both modules, long-exon path included."""
    import os
    import subprocess
    import sys

    pytest.importorskip("triton")
    code = r'''
import torch
from genoattn.levels import codon as L2, exon as L3
torch.manual_seed(0)
m = L2.CodonAttention(8, 32, 2).eval()
C = 50
args = (torch.randn(C, 3, 8), torch.rand(C, 3, 4), torch.randint(0, 3, (C,)), torch.arange(C), torch.tensor([0, 7, 20, 50]))
with torch.no_grad():
    torch.testing.assert_close(m(*args, backend="triton"), m(*args, backend="reference"), atol=1e-5, rtol=1e-4)
q, k, v = (torch.randn(40, 2, 16) for _ in range(3))
cu = torch.tensor([0, 5, 40])
torch.testing.assert_close(L2.packed_attention(q, k, v, cu, backend="triton", long_tokens=10),
                           L2.packed_attention(q, k, v, cu, backend="reference"), atol=1e-5, rtol=1e-4)
m3 = L3.ExonAttention(8, 8, 32, 2).eval()
x = (torch.randn(30, 8), torch.randint(0, 5, (30,)), torch.randn(40, 8), torch.rand(40, 4), torch.randint(0, 5, (40,)),
     torch.randint(0, 7, (5,)), torch.arange(5), torch.arange(5).flip(0), torch.tensor([0, 2, 5]))
with torch.no_grad():
    for a, b in zip(m3(*x, backend="triton"), m3(*x, backend="reference")):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
print("ok")
'''
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


def test_codon_embeddings_are_stored_in_float16_by_default(tmp_path):
    ann = yeast_annotation()
    contig = "chrI"
    tokens = contig_tokens(contig)
    l1, _, _ = _level1_for(tmp_path, contig, ann, contig, tokens, seed=5)
    cfg = base_config()
    cfg["levels"]["level2"]["codon_dtype"] = section("levels.level2")["codon_dtype"]
    assert cfg["levels"]["level2"]["codon_dtype"] == "float16"  # the schema's default
    L2.run(ann, l1, str(tmp_path / "l2.zarr"), contig, cfg)
    emb = open_group(tmp_path / "l2.zarr")["codon_embedding"]
    assert emb.dtype == np.float16
    assert np.isfinite(emb[:2000]).all()
