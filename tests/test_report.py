"""Report figures (workflow/scripts/plot_level.py) on small synthetic stores that follow the level
contracts (random values, said so), and the choice of plots per configured level."""

import sys

import numpy as np
import pytest

from demo_paths import ROOT

sys.path.append(str(ROOT / "workflow" / "scripts"))  # appended: workflow/scripts/tokenize.py must not shadow the stdlib
import plot_level  # noqa: E402

from genoattn.io.store import atomic_store, mark_coordinates  # noqa: E402


def _png_ok(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert not list(path.parent.glob(path.name + ".tmp-*"))


def _level1(path, rng, n=300, dim=16):
    with atomic_store(path, attrs={"level": "level1"}) as w:
        start = np.arange(n, dtype=np.int64) * 512
        w.write("window_embedding", rng.normal(size=(n, dim)).astype(np.float32), dims=("window", "feature"))
        w.write("window_start", start, dims=("window",))
        w.write("window_end", start + 512, dims=("window",))
        skipped = np.zeros(n, bool)
        skipped[rng.integers(0, n, 10)] = True
        w.write("window_skipped", skipped, dims=("window",))
        mark_coordinates(w, "window_start", "window_end")


def _bins(path, rng, n, dim=8, level="level4", contig="chrA"):
    with atomic_store(path, attrs={"level": level}) as w:
        start = np.arange(n, dtype=np.int64) * 10000
        w.write("embedding", rng.normal(size=(n, dim)).astype(np.float32), dims=("bin", "feature"))
        w.write("chrom", np.array([contig] * n, dtype=object), dims=("bin",))
        w.write("start", start, dims=("bin",))
        w.write("end", start + 10000, dims=("bin",))
        w.write("masked", rng.random(n) < 0.1, dims=("bin",))
        mark_coordinates(w, "chrom", "start", "end")


def test_level1_figure_from_two_contigs(tmp_path):
    rng = np.random.default_rng()
    stores = [tmp_path / "chrA.zarr", tmp_path / "chrB.zarr"]
    for s in stores:
        _level1(s, rng, n=int(rng.integers(50, 300)))
    out = tmp_path / "plots" / "level1.png"
    plot_level.plot("level1", stores, str(out))
    _png_ok(out)


def test_level4_and_level5_figures(tmp_path):
    rng = np.random.default_rng()
    l4 = [tmp_path / "level4" / "chrA.zarr", tmp_path / "level4" / "chrB.zarr"]
    _bins(l4[0], rng, 40)
    _bins(l4[1], rng, 25, contig="chrB")
    plot_level.plot("level4", l4, str(tmp_path / "l4.png"))
    _png_ok(tmp_path / "l4.png")
    l5 = tmp_path / "level5.zarr"
    _bins(l5, rng, 65, level="level5")
    nb = 9  # a block layout cached beside the store, as level 5 writes it
    mask = rng.random((nb, nb)) < 0.3
    np.fill_diagonal(mask, True)
    indptr = np.concatenate([[0], np.cumsum(mask.sum(1))])
    np.savez(tmp_path / "level5_layout.npz", key=np.array("k"), block_size=np.array(8), indptr=indptr,
             indices=np.nonzero(mask)[1], stats=np.array("{}"))
    plot_level.plot("level5", [l5], str(tmp_path / "l5.png"))
    _png_ok(tmp_path / "l5.png")


def test_a_store_without_the_expected_variables_gets_the_generic_figure(tmp_path, caplog):
    rng = np.random.default_rng()
    s = tmp_path / "odd.zarr"
    with atomic_store(s, attrs={}) as w:
        w.write("sample_vector", rng.normal(size=(30, 6)).astype(np.float32), dims=("samples", "feature"))
    plot_level.plot("level4", [s], str(tmp_path / "odd.png"))  # no 'embedding' variable
    _png_ok(tmp_path / "odd.png")
    plot_level.plot("level6", [s], str(tmp_path / "l6.png"))  # per-sample PCA
    _png_ok(tmp_path / "l6.png")


def test_pca_explains_a_planted_direction():
    rng = np.random.default_rng()
    direction = rng.normal(size=12)
    direction /= np.linalg.norm(direction)
    x = rng.normal(scale=0.01, size=(500, 12)) + rng.normal(size=(500, 1)) * direction
    scores, ratio = plot_level._pca(x, k=2)
    assert ratio[0] > 0.95 and scores.shape == (500, 2)
    assert ratio[0] >= ratio[1] >= 0


def test_held_out_table_takes_baselines_only_from_a_run_on_that_checkpoint(tmp_path):
    """The shipped level-1 checkpoint and its benchmark run: the table lists the model and the baselines
    of that run; once the weights beside it change, the stale run's baselines are left out."""
    import shutil

    shipped = ROOT / "data" / "demo" / "checkpoints" / "level1"
    d = tmp_path / "level1"
    shutil.copytree(shipped, d)
    rows = plot_level.heldout_rows([str(d / "model.json")])
    labels = [r[1] for r in rows]
    assert labels[0].startswith("genoattn, trained")
    assert "base composition" in labels and sum(label.startswith("k-mer") for label in labels) == 1
    ppl = {r[1]: float(r[2]) for r in rows}
    assert ppl[labels[0]] < ppl["base composition"]
    plot_level.plot("training", [str(d / "model.json")], str(tmp_path / "training.png"))
    _png_ok(tmp_path / "training.png")

    weights = bytearray((d / "model.safetensors").read_bytes())
    weights[-1] ^= 1
    (d / "model.safetensors").write_bytes(bytes(weights))
    assert [r[1] for r in plot_level.heldout_rows([str(d / "model.json")])] == labels[:1]


def _graph(path, rng, n, contig="chr1"):
    """A Hi-C graph store of n bins: a band of local edges (random feature values, said so)."""
    src = np.concatenate([np.arange(n), np.arange(1, n), np.arange(n - 1)])
    dst = np.concatenate([np.arange(n), np.arange(n - 1), np.arange(1, n)])
    order = np.lexsort((src, dst))
    src, dst = src[order], dst[order]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(dst, minlength=n))])
    with atomic_store(path, attrs={"level": "hic", "contig": contig}) as w:
        start = np.arange(n, dtype=np.int64) * 10000
        w.write("start", start, dims=("bin",))
        w.write("end", start + 10000, dims=("bin",))
        w.write("masked", np.zeros(n, bool), dims=("bin",))
        w.write("insulation", rng.normal(size=n), dims=("bin",))
        w.write("boundary", rng.random(n) < 0.01, dims=("bin",))
        w.write("indptr", indptr.astype(np.int64), dims=("bin_ptr",))
        w.write("indices", src.astype(np.int64), dims=("edge",))


def test_plots_of_a_human_size_contig_stay_within_a_memory_bound(tmp_path):
    """chr1 at 10 kb has ~25,000 bins: a dense n x n float64 matrix would take 5 GB. The Hi-C and level-4
    figures draw at most MAX_DRAWN_BINS a side, so their peak memory stays far below that."""
    import tracemalloc

    rng = np.random.default_rng(0)
    n = 25_000
    _graph(tmp_path / "hic" / "chr1.zarr", rng, n)
    _bins(tmp_path / "level4" / "chr1.zarr", rng, n, dim=16, contig="chr1")
    for level, store in (("hic", tmp_path / "hic" / "chr1.zarr"), ("level4", tmp_path / "level4" / "chr1.zarr")):
        tracemalloc.start()
        plot_level.plot(level, [store], str(tmp_path / f"{level}.png"))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        _png_ok(tmp_path / f"{level}.png")
        dense = n * n * 8
        assert peak < 600e6 and peak < dense / 8, (level, peak / 1e6)


def test_hic_figure_reads_the_demo_cooler_sparsely(tmp_path, caplog):
    """The contact map of a real contig (the demo cooler) drawn from its sparse pixels, both triangles."""
    from demo_paths import YEAST_COOL

    rng = np.random.default_rng(0)
    import cooler

    n = int(cooler.Cooler(str(YEAST_COOL)).extent("chrIV")[1] - cooler.Cooler(str(YEAST_COOL)).extent("chrIV")[0])
    _graph(tmp_path / "chrIV.zarr", rng, n, contig="chrIV")
    out = tmp_path / "hic.png"
    plot_level.plot("hic", [tmp_path / "chrIV.zarr"], str(out), hic=str(YEAST_COOL))
    _png_ok(out)
    assert "could not read the contact map" not in caplog.text
