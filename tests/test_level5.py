"""Level 5: genome-wide block-sparse attention over bins (genoattn.levels.chromosome)."""

from __future__ import annotations

import numpy as np
import torch

from genoattn.kernels import BlockLayout, reference
from genoattn.levels import chromosome as chrom


def random_seq(block_size=4, ragged=False):
    """Four contigs of random lengths; ``ragged``: the first one is not a multiple of the block size
    (so its last block is padded)."""
    rng = np.random.default_rng()
    n_bins = [int(x) for x in rng.integers(3, 30, size=4)]
    if ragged and n_bins[0] % block_size == 0:
        n_bins[0] += 1
    return chrom.SequenceLayout(("chrA", "chrB", "chrC", "chrD"), tuple(n_bins), block_size)


def test_local_blocks_never_cross_a_contig_end():
    seq = random_seq(block_size=4)
    layout, stats = chrom.build_block_layout(seq, local_window=20, random_blocks=0, global_blocks=0)
    w = stats["local_radius_blocks"]
    assert w == 3
    contig = seq.contig_of_block()
    indptr, indices = layout.indptr.numpy(), layout.indices.numpy()
    for qb in range(seq.n_blocks):
        keys = indices[indptr[qb]:indptr[qb + 1]]
        assert (contig[keys] == contig[qb]).all()
        same = np.nonzero(contig == contig[qb])[0]
        expect = same[np.abs(same - qb) <= w]
        np.testing.assert_array_equal(keys, expect)
    # token level: every allowed (query, key) pair lies in one contig
    mask = reference.block_layout_mask(layout, seq.n_tokens).numpy()
    tok_contig = np.repeat(contig, seq.block_size)
    q, k = np.nonzero(mask)
    assert (tok_contig[q] == tok_contig[k]).all()


def test_random_and_trans_blocks_are_seeded_and_added():
    seq = random_seq(block_size=4)
    pairs = np.array([[0, seq.n_blocks - 1]])
    a, sa = chrom.build_block_layout(seq, local_window=4, random_blocks=2, seed=7, trans_block_pairs=pairs)
    b, _ = chrom.build_block_layout(seq, local_window=4, random_blocks=2, seed=7, trans_block_pairs=pairs)
    c, _ = chrom.build_block_layout(seq, local_window=4, random_blocks=2, seed=8, trans_block_pairs=pairs)
    assert torch.equal(a.indices, b.indices) and torch.equal(a.indptr, b.indptr)
    assert not (a.indices.numel() == c.indices.numel() and torch.equal(a.indices, c.indices))
    dense = reference.block_layout_mask(a, seq.n_tokens)[::4, ::4]
    assert dense[0, seq.n_blocks - 1] and dense[seq.n_blocks - 1, 0]
    assert sa["trans_block_pairs"] == 1 and 0 < sa["density"] <= 1


def test_every_block_allowed_equals_dense_attention(monkeypatch):
    seq = random_seq(block_size=4)
    N = seq.n_tokens
    module = chrom.ChromosomeAttention(in_dim=12, dim=32, heads=4).double().eval()
    x = torch.randn(N, 12, dtype=torch.float64)
    pos = torch.arange(N)
    mask = torch.rand(N) > 0.2
    full = BlockLayout.from_dense(torch.ones(seq.n_blocks, seq.n_blocks, dtype=torch.bool), seq.block_size)
    glob, _ = chrom.build_block_layout(seq, local_window=0, random_blocks=0, global_blocks=seq.n_blocks)
    assert torch.equal(glob.indices, full.indices)
    with torch.no_grad():
        sparse = module(x, pos, full, mask, backend="reference")
        sparse_cpu = module(x, pos, glob, mask, backend="cpu")
        def dense(q, k, v, layout, token_mask, backend=None):
            return reference.dense_attention(q, k, v, token_mask)

        monkeypatch.setattr(chrom.kernels, "block_sparse_attention", dense)
        dense = module(x, pos, full, mask)
    torch.testing.assert_close(sparse, dense, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(sparse_cpu, dense, rtol=1e-10, atol=1e-10)


def test_padding_and_masked_bins_never_change_other_outputs():
    seq = random_seq(block_size=4, ragged=True)
    layout, _ = chrom.build_block_layout(seq, local_window=8, random_blocks=1, seed=1)
    N = seq.n_tokens
    pos_real = seq.token_positions()
    real = np.zeros(N, dtype=bool)
    real[pos_real] = True
    assert (~real).any()                            # some padding exists (the first contig is ragged)
    masked = real & (np.random.rand(N) < 0.15)
    keep = real & ~masked
    module = chrom.ChromosomeAttention(in_dim=8, dim=32, heads=4).eval()
    x = torch.randn(N, 8)
    x2 = x.clone()
    x2[torch.from_numpy(~keep)] = torch.randn(int((~keep).sum()), 8) * 50
    m = torch.from_numpy(keep)
    with torch.no_grad():
        a = module(x, torch.arange(N), layout, m, backend="cpu")
        b = module(x2, torch.arange(N), layout, m, backend="cpu")
    torch.testing.assert_close(a[m], b[m])
    assert not torch.allclose(a[~m], b[~m])


def test_layout_cache_reused(tmp_path):
    chrom.clear_memory_cache()
    seq = random_seq()
    opts = {"local_window": 10, "random_blocks": 1, "global_blocks": 0, "seed": 0}
    path = tmp_path / "level5_layout.npz"
    l1, s1, src1 = chrom.cached_block_layout(seq, opts, None, path)
    assert src1 == "built" and path.exists()
    mtime = path.stat().st_mtime_ns
    l2, _, src2 = chrom.cached_block_layout(seq, opts, None, path)
    assert src2 == "memory" and l2 is l1
    chrom.clear_memory_cache()
    l3, s3, src3 = chrom.cached_block_layout(seq, opts, None, path)
    assert src3 == "disk" and path.stat().st_mtime_ns == mtime
    assert torch.equal(l3.indices, l1.indices) and torch.equal(l3.indptr, l1.indptr) and s3["key"] == s1["key"]
    # a different bin layout or option rebuilds
    _, _, src4 = chrom.cached_block_layout(seq, {**opts, "seed": 1}, None, path)
    assert src4 == "built"
    other = chrom.SequenceLayout(seq.contigs, tuple(n + 1 for n in seq.n_bins), seq.block_size)
    chrom.clear_memory_cache()
    _, s5, src5 = chrom.cached_block_layout(other, opts, None, path)
    assert src5 == "built" and s5["key"] != s1["key"]


# -- the run function ------------------------------------------------------------------------------
def write_level4(path, contig, n, dim=16, seed=None):
    from genoattn.io.store import atomic_store, mark_coordinates

    start = np.arange(n, dtype=np.int64) * 10_000
    masked = np.random.rand(n) < 0.1
    emb = np.random.randn(n, dim).astype(np.float32)
    emb[masked] = 0
    with atomic_store(path, attrs={"level": "level4", "contig": contig}) as w:
        w.write("chrom", np.array([contig] * n), dims=("bin",))
        w.write("start", start, dims=("bin",))
        w.write("end", start + 10_000, dims=("bin",))
        w.write("masked", masked, dims=("bin",))
        w.write("embedding", emb, dims=("bin", "feature"))
        mark_coordinates(w, "chrom", "start", "end", "masked")
    return masked


def write_trans(path, links):
    from genoattn.io.store import atomic_store, mark_coordinates

    c1, s1, c2, s2, score, source = zip(*links)
    with atomic_store(path, attrs={"level": "hic_trans"}) as w:
        w.write("chrom1", np.array(c1), dims=("link",))
        w.write("start1", np.array(s1, dtype=np.int64), dims=("link",))
        w.write("chrom2", np.array(c2), dims=("link",))
        w.write("start2", np.array(s2, dtype=np.int64), dims=("link",))
        w.write("score", np.array(score, dtype=np.float32), dims=("link",))
        w.write("source", np.array(source), dims=("link",))


def level5_cfg(**kw):
    cfg = {"dim": 32, "heads": 4, "block_size": 8, "local_window": 16, "random_blocks": 1, "global_blocks": 0,
           "trans_links": True, "max_trans_links": None, "checkpoint": None, "seed": 5, "batch_size": 64}
    cfg.update(kw)
    return cfg


def test_run_writes_genome_wide_store(tmp_path):
    import xarray as xr

    sizes = {"chrI": 23, "chrII": 81, "chrIII": 31}
    paths, masked = [], []
    for c, n in sizes.items():
        paths.append(tmp_path / "level4" / f"{c}.zarr")
        masked.append(write_level4(paths[-1], c, n))
    write_trans(tmp_path / "trans.zarr", [("chrI", 15_000, "chrIII", 290_000, 5.0, "hic"),
                                          ("chrII", 700_000, "chrI", 0, 1.0, "breakpoint_bedpe"),
                                          ("chrI", 0, "chrMito", 0, 9.0, "hic"),
                                          ("chrII", 10_000, "chrIII", 10_000, 0.5, "hic")])
    cache = tmp_path / "level5_layout.npz"
    chrom.clear_memory_cache()
    out = tmp_path / "level5.zarr"
    chrom.run(paths, out, level5_cfg(max_trans_links=2), trans_path=tmp_path / "trans.zarr",
              kernels_cfg={"backend": "cpu", "device": "cpu"}, layout_cache=cache)
    ds = xr.open_zarr(out)
    n = sum(sizes.values())
    assert ds["embedding"].dims == ("bin", "feature") and ds["embedding"].shape == (n, 32)
    assert list(dict.fromkeys(ds["chrom"].values.tolist())) == list(sizes)
    m = np.concatenate(masked)
    np.testing.assert_array_equal(ds["masked"].values, m)
    emb = ds["embedding"].values
    assert np.all(emb[m] == 0) and np.isfinite(emb).all() and np.abs(emb[~m]).sum(1).min() > 0
    a = ds.attrs
    assert a["n_trans_links_used"] == 2 and a["layout"]["breakpoint_links_used"] == 1
    assert a["layout"]["trans_links_skipped_contig"] >= 1
    assert a["random_seed"] == 5 and 0 < a["density"] <= 1 and a["nnz_blocks"] > 0
    assert a["layout"]["cache"] == "built" and cache.exists()
    chrom.clear_memory_cache()
    chrom.run(paths, tmp_path / "again.zarr", level5_cfg(max_trans_links=2), trans_path=tmp_path / "trans.zarr",
              kernels_cfg={"backend": "reference", "device": "cpu"}, layout_cache=cache)
    again = xr.open_zarr(tmp_path / "again.zarr")
    assert again.attrs["layout"]["cache"] == "disk"
    np.testing.assert_allclose(again["embedding"].values, emb, rtol=1e-4, atol=1e-5)


def test_trans_links_map_to_blocks(tmp_path):
    seq = chrom.SequenceLayout(("chrI", "chrII", "chrIII"), (23, 81, 31), 8)
    starts = [np.arange(n, dtype=np.int64) * 10_000 for n in seq.n_bins]
    write_trans(tmp_path / "trans.zarr", [("chrI", 15_000, "chrIII", 290_000, 5.0, "hic"),
                                          ("chrII", 700_000, "chrI", 0, float("nan"), "breakpoint"),
                                          ("chrI", 0, "chrMito", 0, 9.0, "hic"),
                                          ("chrII", 10_000, "chrIII", 10_000, 0.5, "hic")])
    pairs, stats = chrom.trans_links_to_blocks(tmp_path / "trans.zarr", seq, starts, max_links=None)
    offs = seq.block_offsets               # chrI blocks 0-2, chrII 3-13, chrIII 14-17
    expect = [(offs[1] + 70 // 8, offs[0] + 0),      # breakpoint first
              (offs[0] + 1 // 8, offs[2] + 29 // 8),  # then by score
              (offs[1] + 1 // 8, offs[2] + 1 // 8)]
    assert [tuple(p) for p in pairs.tolist()] == expect
    assert stats["trans_links_skipped_contig"] == 1 and stats["breakpoint_links_used"] == 1
    capped, _ = chrom.trans_links_to_blocks(tmp_path / "trans.zarr", seq, starts, max_links=1)
    assert [tuple(p) for p in capped.tolist()] == expect[:1]
