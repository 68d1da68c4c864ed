"""Valid but unusual inputs that other tools write, checked against cooler's own reading of them:
divisive balancing weights (Juicer .hic via hic2cool, 4DN: KR/VC/VC_SQRT, or a column's divisive_weights
attribute), legacy multi-resolution files whose zoom levels are numeric groups (/0, /1, ...), float counts,
and the spellings of the mitochondrial genome (chrM, chrMT, M, MT). All made by the tests from the real demo
cooler."""

from __future__ import annotations

import shutil

import cooler
import h5py
import numpy as np
import pytest

from demo_paths import YEAST_COOL, YEAST_FASTA, section
from genoattn import hic
from genoattn.contigs import ContigMap
from genoattn.io.hic import HicError, hic_options, open_cooler, open_hic, reference_lengths
from genoattn.io.store import open_group

HIC = section("levels.hic")


def _ref(path, **kw):
    return section("reference", fasta=str(YEAST_FASTA), hic=str(path), **kw)


def _graph(path):
    g = open_group(path)
    return {k: g[k][:] for k in g.array_keys()}


def _copy(tmp_path, name="c.cool"):
    dst = tmp_path / name
    shutil.copy(YEAST_COOL, dst)
    return dst


def _add_weights(path, name, values, attrs=None):
    with h5py.File(path, "r+") as f:
        f["bins"].create_dataset(name, data=values)
        for k, v in (attrs or {}).items():
            f["bins"][name].attrs[k] = v


def test_divisive_weights_give_cooler_s_balanced_matrix(tmp_path):
    """KR/VC/VC_SQRT (by name) and any column with divisive_weights=True are 1/w: the graph built from
    them equals the one from the multiplicative weights, and cooler's own balanced matrix agrees."""
    path = _copy(tmp_path)
    w = cooler.Cooler(str(path)).bins()[:]["weight"].to_numpy()
    with np.errstate(divide="ignore"):
        inv = np.where(np.isfinite(w), 1.0 / w, np.nan)
    _add_weights(path, "KR", inv)                                  # hic2cool: divisive by name
    _add_weights(path, "norm", inv, {"divisive_weights": True})   # divisive by the column's attribute
    _add_weights(path, "VC", w, {"divisive_weights": False})      # the attribute wins over the name
    clr = cooler.Cooler(str(path))
    ref = clr.matrix(balance="weight").fetch("chrIII")
    np.testing.assert_allclose(clr.matrix(balance="KR").fetch("chrIII"), ref, rtol=1e-9)  # cooler's convention
    base = hic.run_contig(_ref(path), "chrIII", str(tmp_path / "weight.zarr"), HIC)
    want = _graph(tmp_path / "weight.zarr")
    for column in ("KR", "norm", "VC"):
        attrs = hic.run_contig(_ref(path, hic_balance=column), "chrIII", str(tmp_path / f"{column}.zarr"), HIC)
        got = _graph(tmp_path / f"{column}.zarr")
        assert attrs["n_edges"] == base["n_edges"], column
        for k in ("indptr", "indices", "masked", "boundary"):
            np.testing.assert_array_equal(got[k], want[k], err_msg=f"{column}: {k}")
        for k in ("weight", "edge_features", "insulation", "expected"):
            np.testing.assert_allclose(got[k], want[k], rtol=1e-6, atol=1e-12, equal_nan=True,
                                       err_msg=f"{column}: {k}")
    assert "divisive" in hic.run_contig(_ref(path, hic_balance="KR"), "chrI", str(tmp_path / "x.zarr"),
                                        HIC)["balance_source"]
    # and the expected-by-distance of the graph is that of cooler's KR-balanced matrix
    mat = np.nan_to_num(clr.matrix(balance="KR").fetch("chrIII"))
    valid = ~want["masked"]
    for d in (1, 3, 7):
        i = np.arange(len(mat) - d)
        ok = valid[i] & valid[i + d]
        np.testing.assert_allclose(want["expected"][d], mat[i[ok], i[ok] + d].mean(), rtol=1e-9)


def _legacy_mcool(tmp_path, resolutions=(10000, 20000)):
    """A multi-resolution file with numeric zoom groups /0, /1 (no /resolutions), from cooler's zoomify."""
    modern = tmp_path / "modern.mcool"
    cooler.zoomify_cooler(str(YEAST_COOL), str(modern), list(resolutions), chunksize=200_000)
    legacy = tmp_path / "legacy.mcool"
    with h5py.File(modern, "r") as src, h5py.File(legacy, "w") as dst:
        for i, res in enumerate(resolutions):
            src.copy(src[f"resolutions/{res}"], dst, name=str(i))
    return legacy


def test_legacy_numeric_zoom_groups_are_read_by_their_bin_size(tmp_path):
    legacy = _legacy_mcool(tmp_path)
    clr, uri, res = open_cooler(legacy, 20000)
    assert res == 20000 and uri.endswith("::1") and clr.binsize == 20000
    clr, uri, res = open_cooler(legacy, None)  # not set: the default 10 kb level, not "the first group"
    assert res == 10000 and uri.endswith("::0")
    with pytest.raises(HicError, match=r"resolution 5000 bp .* available resolutions: 10000, 20000"):
        open_cooler(legacy, 5000)
    attrs = hic.run_contig(_ref(legacy, hic_resolution=20000), "chrIV", str(tmp_path / "g.zarr"),
                           {**HIC, "balance_missing": "balance"})
    assert attrs["resolution"] == 20000 and attrs["n_bins"] == -(-1531933 // 20000)
    # without the default level and without hic_resolution: say so, name no resolution nobody gave
    (tmp_path / "other").mkdir()
    only = _legacy_mcool(tmp_path / "other", (20000, 40000))
    with pytest.raises(HicError, match=r"hic_resolution is not set .* available resolutions: 20000, 40000") as e:
        open_cooler(only, None)
    assert "10000 bp is not" not in str(e.value)


def test_float_counts_give_the_same_graph(tmp_path):
    path = _copy(tmp_path)
    with h5py.File(path, "r+") as f:
        counts = f["pixels"]["count"][:]
        del f["pixels"]["count"]
        f["pixels"].create_dataset("count", data=counts.astype(np.float64))
    assert cooler.Cooler(str(path)).pixels()[:1]["count"].dtype == np.float64
    hic.run_contig(_ref(YEAST_COOL), "chrV", str(tmp_path / "int.zarr"), HIC)
    hic.run_contig(_ref(path), "chrV", str(tmp_path / "float.zarr"), HIC)
    a, b = _graph(tmp_path / "int.zarr"), _graph(tmp_path / "float.zarr")
    for k in a:
        if a[k].dtype.kind == "f":
            np.testing.assert_allclose(a[k], b[k], rtol=1e-12, equal_nan=True, err_msg=k)
        else:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_the_spellings_of_the_mitochondrial_genome_match_each_other():
    for ref in ("chrM", "chrMT", "M", "MT"):
        cmap = ContigMap(["chrI", ref])
        for name in ("chrM", "chrMT", "M", "MT"):
            assert cmap.map(name) == ref, (name, ref)
        assert ContigMap(["chrI", ref], chr_prefix="exact").map("chrI") == "chrI"
    assert ContigMap(["chrM"], chr_prefix="exact").map("chrMT") is None


def test_a_cooler_chrmt_matches_a_reference_chrm(tmp_path):
    path = _copy(tmp_path)
    cooler.rename_chroms(cooler.Cooler(str(path)), {"chrMito": "chrMT"})
    lengths = reference_lengths(YEAST_FASTA)
    lengths["chrM"] = int(cooler.Cooler(str(path)).chromsizes["chrMT"])
    src = open_hic(path, lengths, ["chrI", "chrM"], **hic_options(_ref(path), HIC))
    assert src.contigs["chrM"].cooler == "chrMT" and not src.bins("chrM")["masked"].all()


def test_alias_suggestions_pair_only_the_same_chromosome():
    cmap = ContigMap(["chrI", "chrII", "chrIII", "chrM"])
    assert cmap.suggest_aliases(["2", "MT"]) == "{'2': 'chrII', 'MT': 'chrM'}"
    assert cmap.suggest_aliases(["1"], targets=["chr20"]) == "{'<name in the file>': '<reference name>'}"
    # by length when the names say nothing
    assert cmap.suggest_aliases(["NC_001134.8"], lengths={"NC_001134.8": 813184},
                                reference_lengths={"chrI": 230218, "chrII": 813184}) == "{'NC_001134.8': 'chrII'}"
