"""Hi-C contact graph, insulation and trans links on the real yeast 10 kb cooler + the demo genome.

Error cases use modified copies of the real cooler made in tmp (renamed chromosomes, weights
removed, an .mcool made with cooler.zoomify_cooler); the BEDPE breakpoints are synthetic.
"""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from demo_paths import YEAST_COOL, YEAST_FASTA

cooler = pytest.importorskip("cooler")

from genoattn import hic  # noqa: E402
from genoattn.config import defaults  # noqa: E402
from genoattn.io.hic import HicError, hic_options, open_hic, reference_lengths  # noqa: E402
from genoattn.io.store import open_group, sha256_file  # noqa: E402

CONTIGS = [f"chr{r}" for r in "I II III IV V VI VII VIII IX X XI XII XIII XIV XV XVI".split()]


def ref_cfg(**kw):
    """A reference entry as the validated config has it (schema defaults), on the demo genome and cooler."""
    return {**defaults("reference"), "fasta": str(YEAST_FASTA), "hic": str(YEAST_COOL), **kw}


def HIC(**kw):
    """The levels.hic section with the schema's defaults, some keys replaced."""
    return {**defaults("levels.hic"), **kw}


def open_demo(lengths, contigs, **kw):
    return open_hic(YEAST_COOL, lengths, contigs, **hic_options(ref_cfg(), HIC(**kw)))


def read_graph(path):
    g = open_group(path)
    return {k: g[k][:] for k in g.array_keys()}, dict(g.attrs)


def dense_check(contig, cfg, arrays, attrs):
    """Recompute the graph from the dense balanced matrix and compare to the streamed one."""
    clr = cooler.Cooler(str(YEAST_COOL))
    mat = clr.matrix(balance="weight").fetch(contig)
    n = mat.shape[0]
    assert attrs["n_bins"] == n
    valid = np.isfinite(clr.bins().fetch(contig)["weight"].values)
    np.testing.assert_array_equal(arrays["masked"], ~valid)
    vals = np.nan_to_num(mat, nan=0.0)
    exp = np.zeros(n)
    for d in range(n):
        i = np.arange(n - d)
        ok = valid[i] & valid[i + d]
        exp[d] = vals[i[ok], i[ok] + d].mean() if ok.any() else 0.0
    np.testing.assert_allclose(arrays["expected"], exp, rtol=1e-9, atol=1e-15)
    return mat, valid


def csr_pairs(arrays):
    indptr, indices = arrays["indptr"], arrays["indices"]
    dst = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    return dst, indices


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    d = tmp_path_factory.mktemp("hic")
    rng = np.random.default_rng()
    out = {}
    for contig in ("chrIV", "chrXII", "chrIII"):
        cfg = HIC(top_percent=float(rng.uniform(1.0, 6.0)), local_distance=int(rng.choice([20000, 50000, 60000])))
        hic.run_contig(ref_cfg(), contig, str(d / f"{contig}.zarr"), cfg)
        out[contig] = (d / f"{contig}.zarr", cfg)
    return out


@pytest.mark.parametrize("contig", ["chrIV", "chrXII", "chrIII"])
def test_graph_invariants(graphs, contig):
    path, cfg = graphs[contig]
    a, attrs = read_graph(path)
    mat, valid = dense_check(contig, cfg, a, attrs)
    n = attrs["n_bins"]
    indptr, indices, ef = a["indptr"], a["indices"], a["edge_features"]
    names = list(attrs["edge_feature_names"])
    assert ef.dtype == np.float32 and ef.shape == (len(indices), len(names)) and np.isfinite(ef).all()
    assert indptr[0] == 0 and indptr[-1] == len(indices) == attrs["n_edges"] and (np.diff(indptr) >= 0).all()
    assert attrs["density"] == pytest.approx(attrs["n_edges"] / n**2)
    dst, src = csr_pairs(a)
    key = dst * n + src
    assert (np.diff(key) > 0).all(), "CSR rows sorted, no duplicate edges"
    # symmetric, with identical features both ways
    rev = np.searchsorted(key, src * n + dst)
    assert (key[rev] == src * n + dst).all()
    np.testing.assert_array_equal(ef[rev], ef)
    # every bin has a self loop; masked bins have nothing else
    selfk = np.arange(n) * n + np.arange(n)
    assert np.isin(selfk, key).all()
    deg = np.diff(indptr)
    assert (deg[~valid] == 1).all()
    # every local pair between unmasked bins is present, and degrees are at least what that implies
    dloc = cfg["local_distance"] // attrs["resolution"]
    i, j = np.nonzero(np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= dloc)
    ok = valid[i] & valid[j]
    assert np.isin(i[ok] * n + j[ok], key).all()
    local_deg = np.array([valid[max(0, b - dloc):b + dloc + 1].sum() for b in range(n)])
    assert (deg[valid] >= local_deg[valid]).all()
    # top-p% by O/E: exactly k undirected pairs, k = round(p% of valid off-diagonal pairs)
    st = attrs["stats"]
    nvp = int(sum((valid[:n - d] & valid[d:]).sum() for d in range(1, n)))
    assert st["n_valid_pairs"] == nvp and st["top_k"] == round(cfg["top_percent"] / 100 * nvp)
    top = ef[:, names.index("is_top")] == 1
    upper = dst < src
    assert (top & upper).sum() == st["top_k"]
    # the top set is the dense top-k of the same score (ties aside)
    pc = st["pseudocount_balanced"]
    vals = np.nan_to_num(mat, nan=0.0)
    iu, ju = np.triu_indices(n, 1)
    okp = valid[iu] & valid[ju] & (vals[iu, ju] > 0)
    score = np.log(vals[iu, ju][okp] + pc) - np.log(a["expected"][(ju - iu)[okp]] + pc)
    kth = np.sort(score)[::-1][st["top_k"] - 1]
    sel_scores = ef[top & upper, names.index("log_oe")]
    assert sel_scores.min() >= np.float32(kth) - 1e-5
    assert (score > kth + 1e-6).sum() <= st["top_k"]
    # features agree with the dense matrix
    d = np.abs(src - dst)
    np.testing.assert_allclose(ef[:, names.index("log10_distance")], np.log10(d * 10000.0 + 1), rtol=1e-6)
    obs = np.where(valid[dst] & valid[src], vals[dst, src], 0.0)
    np.testing.assert_allclose(ef[:, names.index("log1p_balanced")], np.log1p(obs / st["balanced_scale"]),
                               rtol=1e-5, atol=1e-6)
    assert ((ef[:, names.index("is_local")] == 1) == ((d >= 1) & (d <= dloc))).all()
    assert ((ef[:, names.index("is_self")] == 1) == (d == 0)).all()
    assert attrs["masked_fraction"] == pytest.approx((~valid).mean())


def test_streaming_chunks_give_the_same_graph(graphs, tmp_path):
    path, cfg = graphs["chrIV"]
    hic.run_contig(ref_cfg(), "chrIV", str(tmp_path / "small.zarr"), {**cfg, "chunk_pixels": 1000})
    a, at = read_graph(path)
    b, bt = read_graph(tmp_path / "small.zarr")
    assert bt["stats"]["n_pixels_read"] == at["stats"]["n_pixels_read"]
    for k in ("indptr", "indices", "boundary", "weight"):
        np.testing.assert_array_equal(a[k], b[k])
    for k in ("edge_features", "insulation", "expected"):  # sums in another order: rounding only
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-7)


def test_xarray_opens_the_stores(graphs, tmp_path):
    xr = pytest.importorskip("xarray")
    ds = xr.open_zarr(graphs["chrIII"][0])
    assert ds["edge_features"].dims == ("edge", "edge_feature")
    assert {"chrom", "start", "end"} <= set(ds.coords) and ds["start"].dims == ("bin",)
    assert list(ds["edge_feature"].values) == ds.attrs["edge_feature_names"]
    assert (ds["end"].values[-1] == reference_lengths(YEAST_FASTA)["chrIII"])
    assert ds.attrs["level"] == "hic" and str(YEAST_COOL) in ds.attrs["inputs"]


def test_small_length_differences_warn(caplog, tmp_path):
    with caplog.at_level(logging.WARNING, logger="genoattn.hic"):
        hic.run_contig(ref_cfg(), "chrVII", str(tmp_path / "g.zarr"), HIC())
    msg = [r.getMessage() for r in caplog.records if "chrVII" in r.getMessage()]
    assert msg and "1090929" in msg[0] and "1090940" in msg[0]
    _, attrs = read_graph(tmp_path / "g.zarr")
    assert attrs["contig_length_cooler"] == 1090929 and attrs["contig_length_reference"] == 1090940


def test_large_length_difference_is_an_error():
    lengths = reference_lengths(YEAST_FASTA)
    lengths["chrII"] += 25_000
    with pytest.raises(HicError, match=r"chrII.*838184.*813183"):
        open_demo(lengths, ["chrI", "chrII"])


def test_insulation_matches_cooltools(graphs):
    ct = pytest.importorskip("cooltools")
    from cooltools.api.insulation import calculate_insulation_score, find_boundaries
    clr = cooler.Cooler(str(YEAST_COOL))
    table = calculate_insulation_score(clr, [50000], ignore_diags=2)
    table = find_boundaries(table)
    for contig in ("chrIV", "chrXII", "chrIII"):
        a, _ = read_graph(graphs[contig][0])
        ref = table[table.chrom == contig]
        ins_ct = ref["log2_insulation_score_50000"].values
        ok = np.isfinite(ins_ct) & np.isfinite(a["insulation"])
        assert ok.sum() > 10 and (np.isfinite(ins_ct) == np.isfinite(a["insulation"])).mean() > 0.95
        r = np.corrcoef(ins_ct[ok], a["insulation"][ok])[0, 1]
        assert r >= 0.99, (contig, r)
        bs = np.nan_to_num(ref["boundary_strength_50000"].values)
        assert np.corrcoef(bs, a["boundary_strength"])[0, 1] > 0.95
        assert a["boundary"].sum() >= 1 and (a["boundary_strength"][a["boundary"]] > 0).all()


def copy_cooler(tmp_path, name="copy.cool"):
    dst = tmp_path / name
    shutil.copy(YEAST_COOL, dst)
    return dst


def test_chr_prefix_mismatch_is_fixed_by_policy(tmp_path):
    path = copy_cooler(tmp_path)
    clr = cooler.Cooler(str(path))
    cooler.rename_chroms(clr, {c: c[3:] for c in clr.chromnames if c.startswith("chr")})
    assert cooler.Cooler(str(path)).chromnames[1] == "I"
    a = hic.run_contig(ref_cfg(hic=str(path)), "chrI", str(tmp_path / "auto.zarr"), HIC())
    assert a["cooler_chrom"] == "I"
    with pytest.raises(HicError, match=r"chrI.*not in the cooler.*contig_aliases"):
        hic.run_contig(ref_cfg(hic=str(path), chr_prefix="exact"), "chrI", str(tmp_path / "x.zarr"), HIC())
    assert not (tmp_path / "x.zarr").exists()
    b = hic.run_contig(ref_cfg(hic=str(path), chr_prefix="exact", contig_aliases={"I": "chrI"}), "chrI",
                       str(tmp_path / "alias.zarr"), HIC())
    x, _ = read_graph(tmp_path / "auto.zarr")
    y, _ = read_graph(tmp_path / "alias.zarr")
    np.testing.assert_array_equal(x["indices"], y["indices"])
    assert b["n_edges"] == a["n_edges"]


def test_missing_weights(tmp_path):
    import h5py
    path = copy_cooler(tmp_path)
    with h5py.File(path, "r+") as f:
        del f["bins/weight"]
    before = sha256_file(path)
    with pytest.raises(HicError, match=r"cooler balance --name weight"):
        hic.run_contig(ref_cfg(hic=str(path)), "chrI", str(tmp_path / "e.zarr"), HIC())
    with pytest.raises(HicError, match=r"'KR'"):
        hic.run_contig(ref_cfg(hic=str(path), hic_balance="KR"), "chrI", str(tmp_path / "e.zarr"), HIC())
    attrs = hic.run_contig(ref_cfg(hic=str(path)), "chrIV", str(tmp_path / "b.zarr"), HIC(balance_missing="balance"))
    assert sha256_file(path) == before, "the user's file is never modified"
    assert attrs["balance_source"].startswith("cooler.balance_cooler")
    a, _ = read_graph(tmp_path / "b.zarr")
    w0 = cooler.Cooler(str(YEAST_COOL)).bins().fetch("chrIV")["weight"].values
    ok = np.isfinite(w0) & np.isfinite(a["weight"])
    assert ok.sum() > 0.8 * len(w0)
    assert np.corrcoef(w0[ok], a["weight"][ok])[0, 1] > 0.9


def test_mcool_resolutions(tmp_path):
    mcool = tmp_path / "yeast.mcool"
    cooler.zoomify_cooler(str(YEAST_COOL), str(mcool), [10000, 20000], chunksize=200_000)
    with pytest.raises(HicError, match=r"5000 bp \(references.<name>.hic_resolution\) is not in this file; available resolutions: 10000, 20000"):
        hic.run_contig(ref_cfg(hic=str(mcool), hic_resolution=5000), "chrI", str(tmp_path / "e.zarr"), HIC())
    # zoomify does not balance the coarser level: error with the command, or balance in memory
    with pytest.raises(HicError, match=r"cooler balance --name weight .*yeast.balanced.mcool::resolutions/20000"):
        hic.run_contig(ref_cfg(hic=str(mcool), hic_resolution=20000), "chrIV", str(tmp_path / "e.zarr"), HIC())
    a = hic.run_contig(ref_cfg(hic=str(mcool), hic_resolution=20000), "chrIV", str(tmp_path / "r20.zarr"),
                       HIC(balance_missing="balance"))
    assert a["resolution"] == 20000 and a["n_bins"] == -(-1531933 // 20000)
    assert a["cooler"]["uri"].endswith("::resolutions/20000")
    b = hic.run_contig(ref_cfg(hic=str(mcool)), "chrI", str(tmp_path / "r10.zarr"), HIC())
    assert b["resolution"] == 10000
    with pytest.raises(HicError, match=r"available resolutions: 10000"):
        hic.run_contig(ref_cfg(hic_resolution=20000), "chrI", str(tmp_path / "e.zarr"), HIC())


def test_contig_absent_from_cooler(tmp_path):
    lengths = reference_lengths(YEAST_FASTA)
    lengths["chrXVII"] = 50_000
    with pytest.raises(HicError, match=r"chrXVII are not in the cooler"):
        open_demo(lengths, ["chrI", "chrXVII"])
    src = open_demo(lengths, ["chrI", "chrXVII"], missing_contig="skip")
    bins = src.bins("chrXVII")
    assert len(bins["start"]) == 5 and bins["masked"].all()
    # the demo cooler's chrMito / chr2-micron have no sequence in the FASTA: not used, not an error
    assert set(src.unused_cooler_chroms) == {"chrMito", "chr2-micron"}
    # through run_contig: a FASTA (synthetic, N only: lengths matter here) with an extra contig
    fa = tmp_path / "ref.fa"
    fa.write_text(">chrI\n" + "N" * lengths["chrI"] + "\n>chrXVII\n" + "N" * 45_001 + "\n")
    with pytest.raises(HicError, match=r"chrXVII are not in the cooler"):
        hic.run_contig(ref_cfg(fasta=str(fa)), "chrXVII", str(tmp_path / "x.zarr"), HIC())
    assert not (tmp_path / "x.zarr").exists()
    attrs = hic.run_contig(ref_cfg(fasta=str(fa)), "chrXVII", str(tmp_path / "x.zarr"), HIC(missing_contig="skip"))
    a, _ = read_graph(tmp_path / "x.zarr")
    assert attrs["missing_from_cooler"] and attrs["n_bins"] == 5 and attrs["masked_fraction"] == 1.0
    np.testing.assert_array_equal(a["indptr"], np.arange(6))
    np.testing.assert_array_equal(a["indices"], np.arange(5))
    assert np.isfinite(a["edge_features"]).all() and a["end"][-1] == 45_001


def test_trans_links_and_breakpoints(tmp_path):
    rng = np.random.default_rng()
    contigs = ["chrI", "chrII", "chrIII", "chrIV", "chrV"]
    lengths = reference_lengths(YEAST_FASTA)
    # synthetic breakpoints (not real rearrangements), written with and without the chr prefix
    bp = tmp_path / "bp.bedpe"
    rows = []
    for _ in range(3):
        c1, c2 = rng.choice(contigs, 2, replace=False)
        s1, s2 = int(rng.integers(0, lengths[c1] - 100)), int(rng.integers(0, lengths[c2] - 100))
        rows.append((c1, s1, c2, s2))
    bp.write_text("#chrom1\tstart1\tend1\tchrom2\tstart2\tend2\n" + "".join(
        f"{c1[3:]}\t{s1}\t{s1 + 1}\t{c2}\t{s2}\t{s2 + 1}\tbp{i}\n" for i, (c1, s1, c2, s2) in enumerate(rows)) +
        "chrXVI\t100\t101\tchrI\t5000\t5001\n")
    pct = float(rng.uniform(0.05, 0.5))
    attrs = hic.run_trans(ref_cfg(hic_breakpoints=str(bp)), contigs, str(tmp_path / "trans.zarr"),
                          HIC(trans_top_percent=pct))
    g = open_group(tmp_path / "trans.zarr")
    src = np.array(g["source"][:].tolist(), dtype=str)
    c1, c2 = np.array(g["chrom1"][:].tolist(), dtype=str), np.array(g["chrom2"][:].tolist(), dtype=str)
    s1, s2, score = g["start1"][:], g["start2"][:], g["score"][:]
    h = src == "hic"
    st = attrs["stats"]
    assert h.sum() == attrs["n_hic_links"] == st["trans_top_k"] == round(pct / 100 * st["n_trans_pixels_nonzero"])
    assert (c1[h] != c2[h]).all() and set(c1) | set(c2) <= set(contigs)
    assert (s1 % 10000 == 0).all() and (s2 % 10000 == 0).all() and np.isfinite(score[h]).all()
    assert score[h].min() > 1.0
    # links are between unmasked bins
    clr = cooler.Cooler(str(YEAST_COOL))
    for a_, b_, x, y in zip(c1[h][:50], c2[h][:50], s1[h][:50], s2[h][:50]):
        assert np.isfinite(clr.bins().fetch(f"{a_}:{x}-{x + 1}")["weight"].values[0])
        assert np.isfinite(clr.bins().fetch(f"{b_}:{y}-{y + 1}")["weight"].values[0])
    b = src == "breakpoint"
    assert b.sum() == 3 and attrs["stats"]["n_breakpoints_skipped"] == 1 and np.isnan(score[b]).all()
    for (r1, x1, r2, x2), cc1, ss1, cc2, ss2 in zip(rows, c1[b], s1[b], c2[b], s2[b]):
        assert (cc1, ss1, cc2, ss2) == (r1, x1 // 10000 * 10000, r2, x2 // 10000 * 10000)
    bad = tmp_path / "bad.bedpe"
    bad.write_text("chrI\t1\t2\tchrZZ\t5\t6\n")
    with pytest.raises(HicError, match=r"bad.bedpe: line 1: contig 'chrZZ'"):
        hic.run_trans(ref_cfg(hic_breakpoints=str(bad)), contigs, str(tmp_path / "t2.zarr"), HIC())
    assert not (tmp_path / "t2.zarr").exists()


def test_config_section_validates():
    from genoattn.config import ConfigError, validate_config
    cfg = validate_config({"references": {"y": {"fasta": str(YEAST_FASTA), "hic": str(YEAST_COOL)}}})
    assert cfg["levels"]["hic"]["top_percent"] == 2.3 and cfg["levels"]["hic"]["balance_missing"] == "error"
    with pytest.raises(ConfigError, match="balance_missing"):
        validate_config({"references": {"y": {"fasta": str(YEAST_FASTA)}},
                         "levels": {"hic": {"balance_missing": "maybe"}}})
    with pytest.raises(ConfigError, match="boundary_threshold"):
        validate_config({"references": {"y": {"fasta": str(YEAST_FASTA)}},
                        "levels": {"hic": {"boundary_threshold": "mean"}}})
    assert validate_config({"references": {"y": {"fasta": str(YEAST_FASTA)}},
                            "levels": {"hic": {"boundary_threshold": 0.2}}})["levels"]["hic"]["boundary_threshold"] == 0.2
    with pytest.raises(ConfigError, match="top_pct"):
        validate_config({"references": {"y": {"fasta": str(YEAST_FASTA)}}, "levels": {"hic": {"top_pct": 2}}})


@pytest.mark.parametrize("ref_len", [229_999, 240_100])
def test_bins_follow_the_reference_when_lengths_differ_by_less_than_a_bin(tmp_path, ref_len, caplog):
    # synthetic FASTA (N only, lengths matter here): chrI of the cooler is 230,221 bp = 24 bins
    fa = tmp_path / "ref.fa"
    fa.write_text(">chrI\n" + "N" * ref_len + "\n")
    with caplog.at_level(logging.WARNING, logger="genoattn.hic"):
        attrs = hic.run_contig(ref_cfg(fasta=str(fa)), "chrI", str(tmp_path / "g.zarr"), HIC())
    assert any("230221" in r.getMessage() for r in caplog.records)
    a, _ = read_graph(tmp_path / "g.zarr")
    n = -(-ref_len // 10000)
    assert attrs["n_bins"] == n and a["end"][-1] == ref_len and len(a["indptr"]) == n + 1
    w0 = cooler.Cooler(str(YEAST_COOL)).bins().fetch("chrI")["weight"].values
    k = min(n, len(w0))
    np.testing.assert_array_equal(a["weight"][:k], w0[:k])
    assert a["masked"][k:].all()
    assert a["indices"].max() < n and np.isfinite(a["edge_features"]).all()
