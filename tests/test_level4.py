"""Level 4: GAT with edge features over the Hi-C contact graph (genoattn.levels.regulatory)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from demo_paths import section
from genoattn.levels import regulatory as reg

CPU = section("kernels", backend="cpu", device="cpu")

ROOT = Path(__file__).resolve().parents[1]
COOL = ROOT / "data" / "demo" / "hic" / "yeast.10kb.cool"


def real_subgraph(chrom="chrIII", n_max=40):
    """CSR (symmetric, with self loops) of every nonzero balanced contact of a real yeast contig."""
    cooler = pytest.importorskip("cooler")
    c = cooler.Cooler(str(COOL))
    mat = c.matrix(balance=True).fetch(chrom)[:n_max, :n_max]
    raw = c.matrix(balance=False).fetch(chrom)[:n_max, :n_max]
    n = mat.shape[0]
    ok = np.isfinite(mat) & (mat > 0)
    ok = ok | ok.T
    dst, src = np.nonzero(ok)                      # row-major: sorted by destination
    dist = np.abs(dst - src).astype(np.float64)
    feats = np.stack([np.log(np.nan_to_num(mat[dst, src], nan=0.0) + 1e-6), np.log1p(raw[dst, src]),
                      np.log1p(dist), (dist == 0).astype(float)], axis=1)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(dst, minlength=n), out=indptr[1:])
    weights = c.bins().fetch(chrom)["weight"].to_numpy()[:n]
    return indptr, src.astype(np.int64), feats.astype(np.float32), ~np.isfinite(weights)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_gat_layer_equals_pyg_gatconv(backend):
    pyg = pytest.importorskip("torch_geometric.nn")
    indptr, indices, feats, _ = real_subgraph()
    n = len(indptr) - 1
    torch.manual_seed(1)
    module = reg.RegulatoryGAT(in_dim=24, n_edge_features=feats.shape[1], dim=256, heads=16, edge_dim=32,
                               negative_slope=0.2).double()
    x = torch.randn(n, 256, dtype=torch.float64)
    e = module.edge_encoder(torch.from_numpy(feats).double())
    ours = module.gat(x, torch.from_numpy(indptr), torch.from_numpy(indices), e, backend=backend)

    conv = pyg.GATConv(256, 16, heads=16, edge_dim=32, negative_slope=0.2, add_self_loops=False).double()
    conv.load_state_dict(module.gat.state_dict())
    dst = torch.repeat_interleave(torch.arange(n), torch.from_numpy(np.diff(indptr)))
    edge_index = torch.stack([torch.from_numpy(indices), dst])
    theirs = conv(x, edge_index, edge_attr=e)
    assert ours.shape == (n, 256)
    torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-9)
    # and the check can fail: a different slope changes the output
    module.gat.negative_slope = 0.5
    other = module.gat(x, torch.from_numpy(indptr), torch.from_numpy(indices), e, backend=backend)
    assert not torch.allclose(other, theirs, atol=1e-6)


def test_folded_edge_weight_matches_unfolded():
    layer = reg.GATEdgeConv(8, 4, 3, edge_dim=5)
    e = torch.randn(11, 5)
    unfolded = (layer.lin_edge(e).view(-1, 3, 4) * layer.att_edge).sum(-1)
    torch.testing.assert_close(e @ layer.folded_edge_weight(), unfolded)


def test_overlap_matrix_matches_brute_force():
    rng = np.random.default_rng()
    bin_start = np.arange(0, 100_000, 10_000)
    bin_end = np.minimum(bin_start + 10_000, 95_123)
    qs = np.sort(rng.integers(0, 95_000, 60))
    qe = np.minimum(qs + rng.integers(1, 25_000, 60), 95_123)
    keep = rng.random(60) > 0.2
    mat, covered = reg.overlap_matrix(bin_start, bin_end, qs, qe, "overlap", keep)
    dense = np.zeros((len(bin_start), 60))
    for b in range(len(bin_start)):
        for q in range(60):
            if keep[q]:
                dense[b, q] = max(0, min(bin_end[b], qe[q]) - max(bin_start[b], qs[q]))
    tot = dense.sum(1, keepdims=True)
    expect = np.divide(dense, tot, out=np.zeros_like(dense), where=tot > 0)
    np.testing.assert_allclose(mat.toarray(), expect, rtol=1e-12)
    np.testing.assert_array_equal(covered, tot[:, 0] > 0)


def test_masked_bins_never_change_other_bins():
    indptr, indices, feats, _ = real_subgraph("chrI", 24)
    n = len(indptr) - 1
    rng = np.random.default_rng()
    masked = np.zeros(n, dtype=bool)
    masked[rng.choice(n, 4, replace=False)] = True
    ip, ix, kept = reg.drop_masked_edges(indptr, indices, masked)
    assert not masked[ix].any()
    module = reg.RegulatoryGAT(in_dim=12, n_edge_features=feats.shape[1], dim=32, heads=4, edge_dim=8).eval()
    x = torch.randn(n, 12)
    x2 = x.clone()
    x2[torch.from_numpy(masked)] = torch.randn(int(masked.sum()), 12) * 100
    args = (torch.from_numpy(ip), torch.from_numpy(ix), torch.from_numpy(feats[kept]))
    with torch.no_grad():
        a, b = module(x, *args), module(x2, *args)
    keep = torch.from_numpy(~masked)
    torch.testing.assert_close(a[keep], b[keep])
    assert not torch.allclose(a[~keep], b[~keep])


def test_module_is_trainable():
    indptr, indices, feats, _ = real_subgraph("chrI", 16)
    n = len(indptr) - 1
    module = reg.RegulatoryGAT(in_dim=12, n_edge_features=feats.shape[1], dim=32, heads=4, edge_dim=8,
                               gene_dim=6)
    out = module(torch.randn(n, 12), torch.from_numpy(indptr), torch.from_numpy(indices), torch.from_numpy(feats),
                 torch.randn(n, 6), torch.rand(n) > 0.5, backend="reference")
    out.pow(2).sum().backward()
    for name in ("gat.att_edge", "gat.lin_edge.weight", "edge_encoder.0.weight", "gene_proj.weight", "gat.att_src"):
        grad = dict(module.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


# -- the run function on small stores ----------------------------------------------------------------
def write_hic_store(path, chrom="chrI", n_max=24):
    """A graph store in the hic contract, made here from the real cooler (tests only)."""
    from genoattn.io.store import atomic_store, mark_coordinates

    indptr, indices, feats, masked = real_subgraph(chrom, n_max)
    n = len(indptr) - 1
    start = np.arange(n, dtype=np.int64) * 10_000
    with atomic_store(path, attrs={"level": "hic", "contig": chrom, "resolution": 10_000}) as w:
        w.write("chrom", np.array([chrom] * n), dims=("bin",))
        w.write("start", start, dims=("bin",))
        w.write("end", start + 10_000, dims=("bin",))
        w.write("masked", masked, dims=("bin",))
        w.write("weight", np.random.rand(n), dims=("bin",))
        w.write("indptr", indptr, dims=("bin_ptr",))
        w.write("indices", indices, dims=("edge",))
        w.write("edge_features", feats, dims=("edge", "edge_feature"),
                attrs={"edge_feature_names": ["log_balanced", "log_count", "log_distance", "self"]})
        mark_coordinates(w, "chrom", "start", "end")
    return n, masked


def write_level1_store(path, length, dim=16, window=512):
    from genoattn.io.store import atomic_store, mark_coordinates

    ws = np.arange(0, length, window, dtype=np.int64)
    we = np.minimum(ws + window, length)
    skipped = np.random.rand(len(ws)) < 0.05
    emb = np.random.randn(len(ws), dim).astype(np.float32)
    emb[skipped] = 0
    with atomic_store(path, attrs={"level": "level1", "dim": dim}) as w:
        w.write("window_start", ws, dims=("window",))
        w.write("window_end", we, dims=("window",))
        w.write("window_skipped", skipped, dims=("window",))
        w.write("window_embedding", emb, dims=("window", "feature"))
        mark_coordinates(w, "window_start", "window_end")


def write_level3_store(path, length, n_genes=15, dim=10):
    from genoattn.io.store import atomic_store, mark_coordinates

    gs = np.sort(np.random.randint(0, length - 3000, n_genes)).astype(np.int64)
    with atomic_store(path, attrs={"level": "level3"}) as w:
        w.write("gene_start", gs, dims=("gene",))
        w.write("gene_end", gs + np.random.randint(300, 3000, n_genes), dims=("gene",))
        w.write("gene_embedding", np.random.randn(n_genes, dim).astype(np.float32), dims=("gene", "feature"))
        mark_coordinates(w, "gene_start", "gene_end")


def level4_cfg(**kw):
    return section("levels.level4", **{"dim": 32, "heads": 4, "edge_dim": 8, "negative_slope": 0.2,
                                         "gene_context": "auto", "checkpoint": None, "seed": 3, "batch_size": 64, **kw})


@pytest.mark.parametrize("with_genes", [False, True])
def test_run_writes_store_xarray_opens(tmp_path, with_genes):
    import xarray as xr

    n, hic_masked = write_hic_store(tmp_path / "hic.zarr")
    write_level1_store(tmp_path / "l1.zarr", n * 10_000 - 3_456)
    l3 = tmp_path / "l3.zarr"
    if with_genes:
        write_level3_store(l3, n * 10_000 - 3_456)
    out = tmp_path / "level4" / "chrI.zarr"
    reg.run(tmp_path / "hic.zarr", tmp_path / "l1.zarr", out, level4_cfg(), level3_path=str(l3),
            kernels_cfg=CPU, contig="chrI")
    ds = xr.open_zarr(out)
    assert ds["embedding"].dims == ("bin", "feature")
    assert ds["embedding"].shape == (n, 32)
    for c in ("chrom", "start", "end", "masked"):
        assert c in ds.coords
    assert ds.attrs["gene_context"] is with_genes
    assert ds.attrs["model"]["weights"] == "seeded-init"
    masked = ds["masked"].values
    assert (masked >= hic_masked).all()
    emb = ds["embedding"].values
    assert np.all(emb[masked] == 0)
    assert np.isfinite(emb).all() and np.abs(emb[~masked]).sum(1).min() > 0
    assert not any(p.name.startswith("chrI.zarr.tmp-") for p in out.parent.iterdir())
    # same seed, same inputs -> same embedding
    out2 = tmp_path / "again.zarr"
    reg.run(tmp_path / "hic.zarr", tmp_path / "l1.zarr", out2, level4_cfg(), level3_path=str(l3),
            kernels_cfg={**CPU, "backend": "reference"}, contig="chrI")
    np.testing.assert_allclose(xr.open_zarr(out2)["embedding"].values, emb, rtol=1e-4, atol=1e-5)


def test_gene_context_true_without_level3_store_errors(tmp_path):
    n, _ = write_hic_store(tmp_path / "hic.zarr", n_max=8)
    write_level1_store(tmp_path / "l1.zarr", n * 10_000)
    with pytest.raises(FileNotFoundError, match="level3"):
        reg.run(tmp_path / "hic.zarr", tmp_path / "l1.zarr", tmp_path / "o.zarr", level4_cfg(gene_context=True),
                level3_path=str(tmp_path / "missing.zarr"))
    assert not os.path.exists(tmp_path / "o.zarr")


# -- on the graph store built by genoattn.hic from the real yeast cooler ---------------------------
@pytest.fixture(scope="module")
def real_hic(tmp_path_factory):
    hic = pytest.importorskip("genoattn.hic")
    from genoattn.config import load_config

    cfg = load_config(ROOT / "config" / "config.yaml", check_files=False)
    ref = dict(cfg["references"]["yeast_R64"])
    ref["fasta"] = str(ROOT / ref["fasta"])
    ref["hic"] = str(ROOT / ref["hic"])
    d = tmp_path_factory.mktemp("hic")
    for contig in ("chrI", "chrIII"):
        hic.run_contig(ref, contig, str(d / f"{contig}.zarr"), cfg["levels"]["hic"])
    hic.run_trans(ref, ["chrI", "chrIII"], str(d / "trans.zarr"), cfg["levels"]["hic"])
    return d


def test_gatconv_on_real_graph_store(real_hic):
    pyg = pytest.importorskip("torch_geometric.nn")
    from genoattn.io.store import open_group

    g = open_group(real_hic / "chrIII.zarr")
    indptr, indices = np.asarray(g["indptr"][:]), np.asarray(g["indices"][:])
    feats = torch.from_numpy(np.asarray(g["edge_features"][:], dtype=np.float64))
    n = len(indptr) - 1
    torch.manual_seed(0)
    module = reg.RegulatoryGAT(in_dim=8, n_edge_features=feats.shape[1]).double()   # defaults: 256/16/32
    assert module.gat.heads == 16 and module.edge_dim == 32 and module.gat.negative_slope == 0.2
    x = torch.randn(n, 256, dtype=torch.float64)
    e = module.edge_encoder(feats)
    ours = module.gat(x, torch.from_numpy(indptr), torch.from_numpy(indices), e, backend="cpu")
    conv = pyg.GATConv(256, 16, heads=16, edge_dim=32, negative_slope=0.2, add_self_loops=False).double()
    conv.load_state_dict(module.gat.state_dict())
    dst = torch.repeat_interleave(torch.arange(n), torch.from_numpy(np.diff(indptr)))
    theirs = conv(x, torch.stack([torch.from_numpy(indices), dst]), edge_attr=e)
    torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-9)


def test_run_on_real_graph_store(real_hic, tmp_path):
    import xarray as xr

    hic = xr.open_zarr(real_hic / "chrIII.zarr")
    n = hic.sizes["bin"]
    write_level1_store(tmp_path / "l1.zarr", int(hic["end"].values[-1]))
    out = tmp_path / "chrIII.zarr"
    reg.run(real_hic / "chrIII.zarr", tmp_path / "l1.zarr", out, level4_cfg(gene_context=False),
            kernels_cfg=CPU, contig="chrIII")
    ds = xr.open_zarr(out)
    assert ds["embedding"].shape == (n, 32)
    np.testing.assert_array_equal(ds["start"].values, hic["start"].values)
    assert (ds["masked"].values >= hic["masked"].values).all()
    assert ds.attrs["tad_features"] and ds.attrs["gene_context"] is False
    assert ds.attrs["n_edges"] <= hic.attrs["n_edges"]


def test_overlap_matrix_with_overlapping_rows():
    rng = np.random.default_rng()
    rs = np.sort(rng.integers(0, 50_000, 40))
    re_ = rs + rng.integers(1, 4_000, 40)               # regulatory-element-like rows, overlapping
    qs = np.arange(0, 55_000, 256)
    qe = qs + 512                                       # windows with stride < length
    keep = rng.random(len(qs)) > 0.1
    for weight in ("overlap", "count"):
        mat, covered = reg.overlap_matrix(rs, re_, qs, qe, weight, keep)
        ov = np.clip(np.minimum(re_[:, None], qe[None]) - np.maximum(rs[:, None], qs[None]), 0, None) * keep[None]
        dense = ov.astype(float) if weight == "overlap" else (ov > 0).astype(float)
        tot = dense.sum(1, keepdims=True)
        np.testing.assert_allclose(mat.toarray(), np.divide(dense, tot, out=np.zeros_like(dense), where=tot > 0))
        np.testing.assert_array_equal(covered, tot[:, 0] > 0)


# -- regulatory-element nodes ---------------------------------------------------------------------
def test_element_graph_matches_brute_force():
    indptr, indices, feats, _ = real_subgraph("chrI", 20)
    nb = len(indptr) - 1
    bin_start = np.arange(nb, dtype=np.int64) * 10_000
    rng = np.random.default_rng()
    es = np.sort(rng.integers(0, nb * 10_000 - 2_000, 30))
    ee = es + rng.integers(50, 2_000, 30)
    node_bin, ip, ix, eid = reg.element_graph(bin_start, bin_start + 10_000, indptr, indices, es, ee)
    np.testing.assert_array_equal(node_bin, ((es + ee - 1) // 2) // 10_000)
    adj = np.zeros((nb, nb), dtype=bool)
    dst_b = np.repeat(np.arange(nb), np.diff(indptr))
    adj[dst_b, indices] = True
    got = set()
    for i in range(len(es)):
        for k in range(ip[i], ip[i + 1]):
            j = ix[k]
            got.add((i, j))
            assert indices[eid[k]] == node_bin[j] and dst_b[eid[k]] == node_bin[i]   # the bin edge it carries
    expect = {(i, j) for i in range(len(es)) for j in range(len(es)) if adj[node_bin[i], node_bin[j]]}
    assert got == expect and len(got) == len(ix)


def test_run_with_regulatory_element_nodes(real_hic, tmp_path):
    import xarray as xr

    hic = xr.open_zarr(real_hic / "chrI.zarr")
    length = int(hic["end"].values[-1])
    write_level1_store(tmp_path / "l1.zarr", length)
    rng = np.random.default_rng()
    es = np.sort(rng.integers(0, length - 1_000, 25))
    bed = tmp_path / "elements.bed"          # synthetic elements (names as an NCBI-style alias)
    bed.write_text("track name=synthetic\n" + "".join(f"I\t{s}\t{s + 300}\tcre{k}\n" for k, s in enumerate(es))
                   + "chrII\t5\t10\tother\n")
    out = tmp_path / "chrI.zarr"
    reg.run(real_hic / "chrI.zarr", tmp_path / "l1.zarr", out, level4_cfg(gene_context=False, nodes="auto"),
            kernels_cfg=CPU, contig="chrI", regulatory_elements=str(bed),
            contig_policy={"contig_aliases": {"I": "chrI"}, "chr_prefix": "auto"})
    ds = xr.open_zarr(out)
    assert ds.attrs["nodes"] == "regulatory_elements" and ds.sizes["bin"] == 25
    np.testing.assert_array_equal(ds["start"].values, es)
    assert set(ds["name"].values.tolist()) == {f"cre{k}" for k in range(25)}
    np.testing.assert_array_equal(ds["hic_bin"].values, (es + 149) // 10_000)
    assert (ds["masked"].values >= hic["masked"].values[ds["hic_bin"].values]).all()
    assert np.isfinite(ds["embedding"].values).all()
    # nodes: bins ignores the BED
    reg.run(real_hic / "chrI.zarr", tmp_path / "l1.zarr", tmp_path / "b.zarr",
            level4_cfg(gene_context=False, nodes="bins"), kernels_cfg=CPU, contig="chrI", regulatory_elements=str(bed))
    assert xr.open_zarr(tmp_path / "b.zarr").sizes["bin"] == hic.sizes["bin"]


def test_bad_bed_record_names_file_and_line(tmp_path):
    bed = tmp_path / "bad.bed"
    bed.write_text("chrI\t100\t200\n#comment\nchrI\tx\t300\n")
    with pytest.raises(ValueError, match=r"bad.bed: line 3: .*not integers"):
        reg.read_bed(bed, "chrI")
    bed.write_text("chrI\t300\t200\n")
    with pytest.raises(ValueError, match=r"line 1: .*empty"):
        reg.read_bed(bed, "chrI")


def test_direction_matches_pyg_on_a_directed_graph():
    """CSR by destination (indices = sources) is PyG's source -> target; a swap would fail here."""
    pyg = pytest.importorskip("torch_geometric.nn")
    n = 30
    a = np.random.rand(n, n) < 0.2                  # a[i, j]: edge j -> i, not symmetric
    dst, src = np.nonzero(a)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(dst, minlength=n), out=indptr[1:])
    layer = reg.GATEdgeConv(24, 8, 4, edge_dim=5).double()
    x, e = torch.randn(n, 24, dtype=torch.float64), torch.randn(len(src), 5, dtype=torch.float64)
    ours = layer(x, torch.from_numpy(indptr), torch.from_numpy(src.astype(np.int64)), e, backend="cpu")
    conv = pyg.GATConv(24, 8, heads=4, edge_dim=5, add_self_loops=False).double()
    conv.load_state_dict(layer.state_dict())
    theirs = conv(x, torch.from_numpy(np.stack([src, dst]).astype(np.int64)), edge_attr=e)
    torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-9)
    swapped = conv(x, torch.from_numpy(np.stack([dst, src]).astype(np.int64)), edge_attr=e)
    assert not torch.allclose(ours, swapped, atol=1e-6)


def test_chunked_inference_edge_term_equals_training_path():
    indptr, indices, feats, _ = real_subgraph("chrIII", 30)
    n = len(indptr) - 1
    module = reg.RegulatoryGAT(in_dim=12, n_edge_features=feats.shape[1], dim=32, heads=4, edge_dim=8).double()
    args = (torch.randn(n, 12, dtype=torch.float64), torch.from_numpy(indptr), torch.from_numpy(indices),
            torch.from_numpy(feats).double())
    train = module(*args, backend="cpu")                       # grad enabled: [E, edge_dim] path
    with torch.no_grad():
        bias = module.edge_bias(args[3], chunk_edges=7)        # several chunks
        torch.testing.assert_close(bias, module.edge_encoder(args[3]) @ module.gat.folded_edge_weight())
        infer = module(*args, backend="cpu")
    torch.testing.assert_close(infer, train.detach(), rtol=1e-10, atol=1e-10)
