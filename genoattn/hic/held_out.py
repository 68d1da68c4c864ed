"""Held-out contacts: the bin pairs level-4 training hides, and the contact graph the model may see instead.

Input contract
--------------
* The reference's cooler (:class:`genoattn.io.hic.HicSource`, contigs matched to the FASTA) and the
  contig's graph store ``results/{reference}/hic/{contig}.zarr`` built from all of it (the answers:
  which pairs are edges, which are top edges, the expected by distance).

What is held out
----------------
``fraction`` of the contig's off-diagonal graph edges between unmasked bins (top and local), drawn
uniformly with a seeded generator, and for every held-out *top* edge one distance-matched negative: a
pair at the same distance that is not a top edge (what the top-edge AUROC compares against). Every one
of these pairs is *hidden*: treated as never measured, never read into what the model sees:

* balancing: the weights are recomputed by iterative correction (ICE, as ``cooler balance --cis-only``,
  ``ignore_diags`` 2) on the contig's visible pixels, a row's sum scaled up for the pairs it misses
  (missing, not zero); the cooler's own weights, made from every pixel, are not used (bins they mask
  stay masked);
* the graph (:func:`genoattn.hic.graph.build_graph` with ``hidden``): no hidden pair is an edge, and
  none enters the expected, the top-edge threshold, the insulation score or their denominators.

Targets (from all pixels, the cooler's weights, the full graph's expected and pseudocount, as the graph
store defines ``log_oe``): the log observed/expected and the top-edge flag of every hidden pair.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from genoattn.hic.graph import _in_sorted, build_graph, iter_pixels, pair_keys

log = logging.getLogger("genoattn.hic")


def contig_pixels(clr, lo: int, n_cooler: int, chunk_pixels: int):
    """Cis pixels of one contig: local (i, j, count) with i <= j, sorted by key i * n + j."""
    parts = [(b1 - lo, b2 - lo, c) for b1, b2, c in iter_pixels(clr, lo, lo + n_cooler, chunk_pixels)]
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    i, j, c = (np.concatenate(x) for x in zip(*parts))
    cis = j < n_cooler
    return i[cis], j[cis], c[cis]


def ice_weights(i, j, count, masked: np.ndarray, hidden: np.ndarray | None = None, ignore_diags: int = 2,
                max_iters: int = 500, tol: float = 1e-5) -> np.ndarray:
    """Balancing weights of one contig from its visible pixels (NaN on ``masked`` bins).

    Iterative correction as cooler's ``balance`` (``cis_only``, pixels with ``j - i < ignore_diags``
    left out, marginals rescaled to mean 1); a row's sum is multiplied by (valid pairs of the row) /
    (valid pairs not hidden) so a hidden pixel counts as missing, not as zero."""
    n = len(masked)
    valid = ~np.asarray(masked, bool)
    i, j, count = np.asarray(i, np.int64), np.asarray(j, np.int64), np.asarray(count, np.float64)
    keep = (j - i >= ignore_diags) & valid[i] & valid[j]
    hidden = np.zeros(0, np.int64) if hidden is None else np.asarray(hidden, np.int64)
    if len(hidden):
        keep &= ~_in_sorted(i * n + j, hidden)
    i, j, count = i[keep], j[keep], count[keep]
    # valid pairs per row (|i - j| >= ignore_diags) and the hidden ones among them
    vc = np.cumsum(np.r_[0, valid.astype(np.int64)])
    idx = np.arange(n)
    near = vc[np.minimum(idx + ignore_diags, n)] - vc[np.maximum(idx - ignore_diags + 1, 0)]
    row_pairs = np.where(valid, vc[n] - near, 0).astype(np.float64)
    row_hidden = np.zeros(n)
    if len(hidden):
        hi, hj = np.divmod(hidden, n)
        ok = (hj - hi >= ignore_diags) & valid[hi] & valid[hj]
        row_hidden = np.bincount(hi[ok], minlength=n) + np.bincount(hj[ok], minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(row_pairs - row_hidden > 0, row_pairs / np.maximum(row_pairs - row_hidden, 1), 0.0)
    bias = valid.astype(np.float64)
    marg = np.ones(n)
    for _ in range(max_iters):
        v = count * bias[i] * bias[j]
        marg = (np.bincount(i, v, minlength=n) + np.bincount(j, v, minlength=n)) * scale
        live = valid & (marg > 0)
        if not live.any():
            break
        marg = marg / marg[live].mean()
        marg[~live] = 1.0
        bias = np.where(live, bias / marg, 0.0)
        if marg[live].var() < tol:
            break
    v = count * bias[i] * bias[j]
    marg = (np.bincount(i, v, minlength=n) + np.bincount(j, v, minlength=n)) * scale
    live = valid & (marg > 0)
    if live.any():
        bias = bias / np.sqrt(marg[live].mean())
    return np.where(live, bias, np.nan)


def balanced_values(i, j, count, weights, keys: np.ndarray, n: int) -> np.ndarray:
    """Balanced contact of the pairs ``keys`` (sorted, i * n + j with i <= j); 0 where no pixel."""
    pk = np.asarray(i, np.int64) * n + np.asarray(j, np.int64)
    order = np.argsort(pk, kind="stable")
    pk, i, j, count = pk[order], np.asarray(i)[order], np.asarray(j)[order], np.asarray(count)[order]
    out = np.zeros(len(keys))
    if len(pk):
        pos = np.minimum(np.searchsorted(pk, keys), len(pk) - 1)
        hit = pk[pos] == keys
        out[hit] = count[pos[hit]] * weights[i[pos[hit]]] * weights[j[pos[hit]]]
    return out


@dataclass
class HeldOutPairs:
    """The hidden pairs of one contig (local bin indices, i < j) with their targets from all pixels."""

    i: np.ndarray
    j: np.ndarray
    log_oe: np.ndarray        # float32, as the graph store's log_oe
    is_top: np.ndarray        # bool: a top edge of the full graph
    is_edge: np.ndarray       # bool: an edge of the full graph (held out); False: a matched negative
    keys: np.ndarray          # sorted pair_keys of all of them

    @property
    def auroc_set(self) -> np.ndarray:
        """The pairs of the top-edge AUROC: held-out top edges and their distance-matched negatives."""
        return (self.is_edge & self.is_top) | ~self.is_edge


def full_graph_edges(store) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected off-diagonal edges (i < j) of a graph store and their top flag."""
    indptr = np.asarray(store["indptr"][:], np.int64)
    src = np.asarray(store["indices"][:], np.int64)
    names = list(store.attrs.get("edge_feature_names"))
    feats = np.asarray(store["edge_features"][:], np.float32)
    dst = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    up = src > dst
    return dst[up], src[up], feats[up, names.index("is_top")] > 0


def choose_held_out(store, masked: np.ndarray, fraction: float, rng: np.random.Generator,
                    max_tries: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, is_top, is_edge) of the held-out edges and the matched negatives of the held-out top edges."""
    n = len(masked)
    ei, ej, top = full_graph_edges(store)
    ok = ~masked[ei] & ~masked[ej]
    ei, ej, top = ei[ok], ej[ok], top[ok]
    pick = rng.random(len(ei)) < fraction
    hi, hj, htop = ei[pick], ej[pick], top[pick]
    top_keys = np.sort(ei[top] * n + ej[top])
    taken = set((hi * n + hj).tolist())
    neg_i, neg_j = [], []
    for d in (hj - hi)[htop]:
        for _ in range(max_tries):
            a = int(rng.integers(0, n - d))
            b = a + int(d)
            key = a * n + b
            if masked[a] or masked[b] or key in taken or _in_sorted(np.array([key]), top_keys)[0]:
                continue
            taken.add(key)
            neg_i.append(a)
            neg_j.append(b)
            break
    i = np.concatenate([hi, np.asarray(neg_i, np.int64)])
    j = np.concatenate([hj, np.asarray(neg_j, np.int64)])
    is_top = np.concatenate([htop, np.zeros(len(neg_i), bool)])
    is_edge = np.concatenate([np.ones(len(hi), bool), np.zeros(len(neg_i), bool)])
    return i, j, is_top, is_edge


class ContigContacts:
    """One contig's pixels and full-data answers; makes held-out sets and the visible graphs that go with them."""

    def __init__(self, src, contig: str, store, params):
        self.contig, self.params, self.src = contig, params, src
        bins = src.bins(contig)
        m = src.contigs[contig]
        self.n = len(bins["start"])
        self.n_cooler = min(self.n, m.hi - m.lo) if m.cooler is not None else 0
        self.lo = m.lo
        self.bins, self.masked, self.weights = bins, bins["masked"], bins["weight"]
        self.store = store
        self.i, self.j, self.count = contig_pixels(src.clr, m.lo, self.n_cooler, params.chunk_pixels)
        self.expected = np.asarray(store["expected"][:], np.float64)
        self.pc = float(store.attrs["stats"]["pseudocount_balanced"])

    def log_oe(self, i, j, weights=None, expected=None, pc=None) -> np.ndarray:
        """log((balanced + pc) / (expected(d) + pc)) of pairs (i < j), by default from all pixels."""
        w = self.weights if weights is None else weights
        e = self.expected if expected is None else expected
        pc = self.pc if pc is None else pc
        keys = np.asarray(i, np.int64) * self.n + np.asarray(j, np.int64)
        order = np.argsort(keys, kind="stable")
        bal = np.empty(len(keys))
        bal[order] = balanced_values(self.i, self.j, self.count, np.nan_to_num(w, nan=0.0), keys[order], self.n)
        return (np.log(bal + pc) - np.log(e[np.asarray(j) - np.asarray(i)] + pc)).astype(np.float32)

    def held_out(self, fraction: float, rng: np.random.Generator) -> HeldOutPairs:
        i, j, is_top, is_edge = choose_held_out(self.store, self.masked, fraction, rng)
        return HeldOutPairs(i, j, self.log_oe(i, j), is_top, is_edge, pair_keys(i, j, self.n))

    def visible(self, hidden: HeldOutPairs | None):
        """(graph arrays as a graph store holds them, visible weights) without the hidden pairs."""
        keys = np.zeros(0, np.int64) if hidden is None else hidden.keys
        w = ice_weights(self.i, self.j, self.count, self.masked, keys)
        g = build_graph(self.src.clr, self.lo, self.n_cooler, w, self.src.resolution, self.params, hidden=keys)
        return g, w


class GraphArrays(dict):
    """A graph store held in memory (arrays by name, ``attrs``): what level 4 reads from ``hic/{contig}.zarr``."""

    def __init__(self, arrays: dict, attrs: dict):
        super().__init__(arrays)
        self.attrs = attrs


def graph_arrays(contacts: ContigContacts, g: dict, weights: np.ndarray) -> GraphArrays:
    from genoattn.hic.graph import EDGE_FEATURE_NAMES

    b = contacts.bins
    masked = ~np.isfinite(weights)
    return GraphArrays({"chrom": b["chrom"], "start": b["start"], "end": b["end"], "weight": weights,
                        "masked": masked, "insulation": g["insulation"], "boundary": g["boundary"],
                        "boundary_strength": g["boundary_strength"], "indptr": g["indptr"],
                        "indices": g["indices"], "edge_features": g["edge_features"], "expected": g["expected"]},
                       {"contig": contacts.contig, "resolution": contacts.src.resolution,
                        "edge_feature_names": EDGE_FEATURE_NAMES, "stats": g["stats"]})
