"""Held-out Hi-C contacts for levels 4-5 (genoattn.hic.held_out, genoattn.training.held_out_contacts,
genoattn.training.trans_contacts), on the real yeast cooler: no held-out pair reaches what the model sees."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from demo_paths import YEAST_COOL, YEAST_FASTA, section
from genoattn.hic import graph_params, open_reference_hic, run_contig
from genoattn.hic.held_out import ContigContacts, graph_arrays, ice_weights
from genoattn.io.store import open_group
from genoattn.training.held_out_contacts import auroc, stratum_adjusted_spearman

cooler = pytest.importorskip("cooler")
h5py = pytest.importorskip("h5py")

CONTIG = "chrII"


def reference(hic=YEAST_COOL):
    return section("reference", fasta=str(YEAST_FASTA), hic=str(hic))


@pytest.fixture(scope="module")
def graph_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("hic") / f"{CONTIG}.zarr"
    run_contig(reference(), CONTIG, str(out), section("levels.hic"))
    return out


def contacts(graph_store, hic=YEAST_COOL, contig=CONTIG):
    cfg = section("levels.hic")
    src, _ = open_reference_hic(reference(hic), [contig], cfg)
    return ContigContacts(src, contig, open_group(str(graph_store)), graph_params(cfg))


def perturbed_cooler(tmp_path, keep) -> str:
    """A copy of the demo cooler whose pixels selected by ``keep(bin1, bin2)`` (cooler bin ids) get other counts."""
    path = tmp_path / "perturbed.cool"
    shutil.copy(YEAST_COOL, path)
    with h5py.File(path, "r+") as f:
        b1, b2 = f["pixels/bin1_id"][:], f["pixels/bin2_id"][:]
        count = f["pixels/count"][:]
        sel = keep(b1, b2)
        assert sel.any()
        count[sel] = count[sel] * 7 + 3
        f["pixels/count"][:] = count
    return str(path)


def test_ice_weights_equal_coolers_cis_only_balancing(graph_store):
    cc = contacts(graph_store)
    bias, _ = cooler.balance_cooler(cc.src.clr, cis_only=True, store=False, ignore_diags=2, tol=1e-8)
    m = cc.src.contigs[CONTIG]
    theirs = np.full(cc.n, np.nan)
    theirs[:cc.n_cooler] = bias[m.lo:m.lo + cc.n_cooler]
    ours = ice_weights(cc.i, cc.j, cc.count, ~np.isfinite(theirs), tol=1e-8)
    ok = np.isfinite(theirs)
    assert np.array_equal(np.isfinite(ours), ok)
    np.testing.assert_allclose(ours[ok], theirs[ok], rtol=1e-3)


def test_held_out_pairs_targets_and_matched_negatives(graph_store):
    cc = contacts(graph_store)
    p = cc.held_out(0.3, np.random.default_rng(3))
    assert len(p.i) and (p.j > p.i).all() and len(np.unique(p.keys)) == len(p.i)
    assert not (cc.masked[p.i] | cc.masked[p.j]).any()
    # a held-out edge's target is the graph store's own log O/E of that edge
    st = open_group(str(graph_store))
    names = list(st.attrs["edge_feature_names"])
    indptr, src = st["indptr"][:], st["indices"][:]
    dst = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    store_oe = dict(zip(zip(dst.tolist(), src.tolist()), st["edge_features"][:][:, names.index("log_oe")].tolist()))
    e = p.is_edge
    np.testing.assert_allclose(p.log_oe[e], [store_oe[(a, b)] for a, b in zip(p.i[e], p.j[e])], rtol=1e-6)
    # one negative per held-out top edge (when one exists), at the same distance, never a top edge
    neg = ~p.is_edge
    assert neg.sum() and not p.is_top[neg].any()
    top_d = np.sort((p.j - p.i)[p.is_edge & p.is_top])
    neg_d = np.sort((p.j - p.i)[neg])
    assert set(neg_d.tolist()) <= set(top_d.tolist()) and len(neg_d) >= 0.9 * len(top_d)


def test_no_held_out_pair_reaches_the_visible_graph(graph_store, tmp_path):
    cc = contacts(graph_store)
    p = cc.held_out(0.15, np.random.default_rng(0))
    g, w = cc.visible(p)
    dst = np.repeat(np.arange(cc.n), np.diff(g["indptr"]))
    keys = np.minimum(dst, g["indices"]) * cc.n + np.maximum(dst, g["indices"])
    assert not np.isin(p.keys, keys).any(), "a held-out pair is an edge of the graph the model sees"
    full, _ = cc.visible(None)
    assert full["stats"]["n_valid_pairs"] - g["stats"]["n_valid_pairs"] == int((p.j - p.i >= 1).sum())

    # change every held-out pixel's count in a copy of the cooler: nothing the model sees may change ...
    m = cc.src.contigs[CONTIG]
    n = cc.n

    def is_hidden(b1, b2):
        i, j = b1 - m.lo, b2 - m.lo
        inside = (i >= 0) & (j < cc.n_cooler) & (i < cc.n_cooler) & (j >= 0)
        return inside & np.isin(i * n + j, p.keys)

    other = contacts(graph_store, perturbed_cooler(tmp_path, is_hidden))
    g2, w2 = other.visible(p)
    np.testing.assert_array_equal(w2, w)                   # balancing
    for name in ("indptr", "indices", "edge_features", "expected", "insulation", "boundary", "boundary_strength"):
        np.testing.assert_array_equal(g2[name], g[name], err_msg=name)
    a, b = graph_arrays(cc, g, w), graph_arrays(other, g2, w2)
    assert a.keys() == b.keys()
    # ... while the answers do (the check can fail)
    assert not np.allclose(other.log_oe(p.i, p.j), p.log_oe)
    # and a pixel that is not held out does change what the model sees
    visible_pixel = lambda b1, b2: (b1 - m.lo == 3) & (b2 - m.lo == 5) & ~is_hidden(b1, b2)  # noqa: E731
    (tmp_path / "visible").mkdir()
    third = contacts(graph_store, perturbed_cooler(tmp_path / "visible", visible_pixel))
    g3, w3 = third.visible(p)
    assert not np.array_equal(w3, w) or not np.array_equal(g3["edge_features"], g["edge_features"])


def test_metrics():
    assert auroc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1], bool)) == 1.0
    assert auroc(np.array([1.0, 1.0]), np.array([0, 1], bool)) == 0.5
    rng = np.random.default_rng(0)
    d = rng.integers(1, 64, 500)
    obs = rng.normal(size=500)
    rho, strata = stratum_adjusted_spearman(obs, obs, d)
    assert rho == pytest.approx(1.0) and strata >= 4
    assert stratum_adjusted_spearman(np.zeros(500), obs, d)[0] == 0.0


# -- the training stage end to end: train_level4 + train_level5 in a temporary workflow -----------------------
@pytest.fixture(scope="module")
def contact_run(tmp_path_factory):
    import yaml

    from demo_paths import DEMO, snakemake

    wd = tmp_path_factory.mktemp("contacts")
    cfg = {"references": {"yeast": {
        "fasta": str(YEAST_FASTA), "hic": str(YEAST_COOL), "include": ["chrI", "chrII", "chrIII", "chrV", "chrVI"],
        "held_out": {"test": ["chrVI"], "validation": ["chrIII"]},
        "centromeres": str(DEMO / "yeast_R64" / "centromeres.bed")}},
        "levels": {"level1": {"dim": 16, "heads": 2}, "level4": {"dim": 16, "heads": 2, "checkpoint": "train"},
                   "level5": {"dim": 16, "heads": 2, "block_size": 16, "checkpoint": "train"}},
        "training": {"level4": {"steps": 6, "warmup": 2, "log_every": 2, "masks": 1, "heldout_masks": 2},
                     "level5": {"steps": 4, "warmup": 2, "log_every": 2, "batch": 256}},
        "kernels": {"backend": "cpu", "device": "cpu"}}
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(wd, "level5", "results/yeast/plots/contacts.png", "results/yeast/plots/training.png")
    return wd / "results" / "yeast"


@pytest.mark.workflow
def test_level4_training_measures_itself_and_its_baselines_on_held_out_contigs(contact_run):
    import json

    import pandas as pd

    info = json.loads((contact_run / "train/level4/model.json").read_text())
    assert info["objective"] == "held-out contact prediction" and info["steps"] == 6
    for split in ("validation", "test"):
        m = info["metrics"][split]
        assert m["top_edges"] > 0 and m["negatives"] > 0 and -1 <= m["spearman"] <= 1 and 0 <= m["auroc_top"] <= 1
        base = info["baselines"][split]
        assert set(base) == {"distance", "neighbours", "sequence_only"}
        assert base["distance"]["auroc_top"] == pytest.approx(0.5, abs=0.05)  # distance-matched negatives
    pairs = pd.read_parquet(contact_run / "train/level4/heldout_pairs.parquet")
    assert set(pairs["contig"]) == {"chrIII", "chrVI"}                       # held-out contigs only
    assert (pairs["bin2"] > pairs["bin1"]).all() and pairs["predicted_log_oe"].notna().all()
    assert json.loads((contact_run / "train/level4/sequence_only/model.json").read_text())["model"] == "sequence only"


@pytest.mark.workflow
def test_level5_training_sees_no_trans_pixel_and_levels_record_checkpoints(contact_run):
    import json

    import xarray as xr

    info = json.loads((contact_run / "train/level5/model.json").read_text())
    assert info["layout"]["trans_block_pairs"] == 0                          # no Hi-C trans link in the input
    assert set(info["baselines"]["test"]) == {"position"} and info["metrics"]["test"]["positives"] > 0
    assert info["metrics"]["test"]["chromosome_pairs"] == 4                   # chrVI with each other contig
    for store, level in (("level4/chrI.zarr", "level4"), ("level5.zarr", "level5")):
        model = xr.open_zarr(contact_run / store).attrs["model"]
        assert model["trained"] and model["checkpoint"].endswith(f"train/{level}/model.safetensors")
    assert (contact_run / "plots/contacts.png").stat().st_size > 10_000
    assert (contact_run / "plots/training.png").stat().st_size > 10_000


@pytest.mark.workflow
def test_level5_input_does_not_change_when_trans_pixels_do(contact_run, tmp_path):
    """Level 5 trains on level-4 embeddings of cis pixels balanced per contig: every trans pixel may change."""
    import torch

    from genoattn.levels.regulatory import RegulatoryGAT
    from genoattn.training.trans_contacts import level4_embeddings

    l4 = section("levels.level4", gene_context=False)
    torch.manual_seed(0)
    module = RegulatoryGAT(16, 8, dim=16, heads=2, edge_dim=4, n_bin_features=4)
    store = contact_run / "hic/chrI.zarr"
    level1 = contact_run / "level1/chrI.zarr"

    def embed(hic):
        cc = contacts(store, hic, "chrI")
        return level4_embeddings(cc, str(level1), None, l4, module, torch.device("cpu"), "cpu")[0]

    src = contacts(store, YEAST_COOL, "chrI").src
    m = src.contigs["chrI"]
    inside = lambda b: (b >= m.lo) & (b < m.hi)  # noqa: E731
    trans = perturbed_cooler(tmp_path, lambda b1, b2: inside(b1) != inside(b2))
    np.testing.assert_array_equal(embed(trans), embed(YEAST_COOL))
    (tmp_path / "cis").mkdir()
    cis = perturbed_cooler(tmp_path / "cis", lambda b1, b2: inside(b1) & inside(b2) & (b2 - b1 == 2))
    assert not np.array_equal(embed(cis), embed(YEAST_COOL))   # the check can fail
