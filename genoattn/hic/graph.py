"""The intra-chromosomal contact graph of one contig, built pixel chunk by pixel chunk.

Memory is bounded for a human genome at 10 kb (~25K bins on chr1, ~3e8 cis pixels): pixels are
read from the cooler's HDF5 pixel table in row blocks of at most ``chunk_pixels`` pixels (through
the ``bin1_offset`` index), never as a matrix. Two streaming passes:

1. expected by distance: ``E(d) = sum of balanced contacts at distance d / number of valid bin
   pairs at distance d`` (zero pixels count; pairs with a masked bin do not), as
   ``cooltools.expected_cis``' ``balanced.avg``; plus the diamond sums of the insulation score.
2. edges: the top ``top_percent`` % of the valid off-diagonal bin pairs by observed/expected,
   among the pairs observed above expected (O/E > 1: on a sparse cooler with fewer enriched pixels
   than the top ``top_percent`` %, only those are top edges, never a depleted pixel),
   kept exactly with a bounded buffer (compacted with ``argpartition`` whenever it exceeds 1.5 k
   entries, so memory is O(k + chunk)); pixels within ``local_distance`` are collected for the
   local edges' features.

Edges (undirected, then stored in both directions): top-p% O/E pairs, every pair of unmasked bins
at most ``local_distance`` bp apart (bin starts), and a self loop on every bin. Masked bins (NaN
weight) get only their self loop. O/E uses a pseudocount of ``pseudocount`` reads in balanced
units (``pseudocount * median(weight)^2``) so that sparse long-range single reads do not dominate
and every feature is finite. Peak memory ~ 16 B x 1.5 k (buffer) + 24 B x chunk_pixels + the
output (directed edges x (8 + 4 x n_features) B).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from genoattn.hic.insulation import DiamondAccumulator, call_boundaries, log2_insulation, n_valid_pixels

log = logging.getLogger("genoattn.hic")

EDGE_FEATURE_NAMES = ["log1p_balanced", "log_oe", "log10_distance", "log1p_expected",
                      "is_self", "is_local", "is_top", "is_masked"]
EDGE_FEATURE_DOC = {
    "log1p_balanced": "log1p(balanced contact / balanced_scale); balanced_scale = mean balanced contact over valid off-diagonal pairs of the contig",
    "log_oe": "natural log of (balanced + pc) / (expected(d) + pc), pc = pseudocount reads in balanced units; 0 on masked self loops",
    "log10_distance": "log10(|i - j| * resolution + 1), bp between bin starts",
    "log1p_expected": "log1p(expected(d) / balanced_scale)",
    "is_self": "1 for self loops",
    "is_local": "1 when 1 <= |i - j| * resolution <= local_distance",
    "is_top": "1 when the pair is in the top top_percent % by O/E",
    "is_masked": "1 for the self loop of a masked (NaN-weight) bin",
}


@dataclass
class GraphParams:
    top_percent: float = 2.3
    local_distance: int = 50000
    pseudocount: float = 1.0
    chunk_pixels: int = 5_000_000
    insulation_window: int = 5
    ignore_diags: int = 2
    boundary_threshold: object = "li"
    min_frac_valid_pixels: float = 0.66


def iter_pixels(clr, lo: int, hi: int, chunk_pixels: int):
    """Yield (bin1_id, bin2_id, count) arrays for rows lo..hi of the pixel table, in row blocks; a table
    that cannot be read (truncated or corrupt file) is a HicError naming the file and the rows."""
    from genoattn.io.hic import HicError

    try:
        yield from _iter_pixels(clr, lo, hi, chunk_pixels)
    except (OSError, KeyError) as exc:
        raise HicError(f"{clr.uri}: pixels of bins {lo}-{hi} cannot be read ({type(exc).__name__}: {exc}); the file "
                       "is truncated or corrupt. Fix: download or convert it again, and check it with "
                       "`cooler info` and `cooler dump`.") from None


def _iter_pixels(clr, lo: int, hi: int, chunk_pixels: int):
    with clr.open("r") as grp:
        offsets = np.asarray(grp["indexes"]["bin1_offset"][lo:hi + 1], dtype=np.int64)
        pix = grp["pixels"]
        r = 0
        nrows = hi - lo
        while r < nrows:
            target = offsets[r] + chunk_pixels
            r2 = int(np.searchsorted(offsets, target, side="right")) - 1
            r2 = min(max(r2, r + 1), nrows)
            a, b = int(offsets[r]), int(offsets[r2])
            if b > a:
                yield (np.asarray(pix["bin1_id"][a:b], np.int64), np.asarray(pix["bin2_id"][a:b], np.int64),
                       np.asarray(pix["count"][a:b], np.float64))
            r = r2


def valid_pairs_by_distance(valid: np.ndarray) -> np.ndarray:
    """n(d) = #{i : valid[i] and valid[i + d]} for d = 0..n-1 (autocorrelation by FFT, exact)."""
    n = len(valid)
    if n == 0:
        return np.zeros(0, np.int64)
    v = valid.astype(np.float64)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(v, size)
    ac = np.fft.irfft(f * np.conj(f), size)[:n]
    return np.rint(ac).astype(np.int64)


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """np.unique for int64 keys by sorting (numpy's hash-based unique is slow on 10^7 keys)."""
    a = np.sort(a)
    return a[np.r_[True, a[1:] != a[:-1]]] if len(a) else a


class TopK:
    """Exact top-k (by score) of a stream, memory O(k + one chunk)."""

    def __init__(self, k: int):
        self.k = int(k)
        self.keys = [np.zeros(0, np.int64)]
        self.scores = [np.zeros(0, np.float64)]
        self.vals = [np.zeros(0, np.float64)]
        self.size = 0
        self.threshold = -np.inf

    def add(self, keys, scores, vals):
        if self.k <= 0:
            return
        keep = scores >= self.threshold
        if not keep.all():
            keys, scores, vals = keys[keep], scores[keep], vals[keep]
        self.keys.append(keys)
        self.scores.append(scores)
        self.vals.append(vals)
        self.size += len(keys)
        if self.size > max(3 * self.k // 2, 1 << 16):
            self._compact()

    def _compact(self, final: bool = False):
        keys, scores, vals = (np.concatenate(x) for x in (self.keys, self.scores, self.vals))
        if len(keys) > self.k:
            if final:
                # exact and independent of chunking: ties at the k-th score broken by key (smaller first)
                kth = np.partition(scores, len(scores) - self.k)[len(scores) - self.k]
                above = np.flatnonzero(scores > kth)
                ties = np.flatnonzero(scores == kth)
                ties = ties[np.argsort(keys[ties], kind="stable")][: self.k - len(above)]
                order = np.concatenate([above, ties])
            else:
                # O(n): keep everything scoring at least the k-th largest (ties kept for the final pass)
                kth = np.partition(scores, len(scores) - self.k)[len(scores) - self.k]
                order = np.flatnonzero(scores >= kth)
            keys, scores, vals = keys[order], scores[order], vals[order]
            self.threshold = scores.min()
        self.keys, self.scores, self.vals = [keys], [scores], [vals]
        self.size = len(keys)

    def result(self):
        self._compact(final=True)
        return self.keys[0], self.scores[0], self.vals[0]


def pair_keys(i, j, n: int) -> np.ndarray:
    """Sorted unique int64 keys ``min(i,j) * n + max(i,j)`` of bin pairs of an n-bin contig."""
    i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
    return np.unique(np.minimum(i, j) * n + np.maximum(i, j))


def _in_sorted(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    if not len(sorted_keys):
        return np.zeros(len(keys), bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[pos] == keys


def build_graph(clr, lo: int, n_cooler: int, weights: np.ndarray, resolution: int, params: GraphParams,
                hidden: np.ndarray | None = None):
    """Build the graph of one contig.

    ``lo``: first cooler bin of the contig; ``n_cooler``: cooler bins used (<= n bins);
    ``weights``: the contig's weights on the reference's bins (length n, NaN = masked).
    ``hidden``: bin pairs held out from the graph (:func:`pair_keys`, training of level 4): they are
    treated as not measured: their pixels are never read into anything (expected, top edges, insulation),
    they count in no denominator (pairs per distance, pixels per insulation diamond) and they are never
    an edge, local or top.
    Returns a dict of arrays and statistics (see :func:`genoattn.hic.run_contig`).
    """
    t0 = time.time()
    n = len(weights)
    w = np.asarray(weights, np.float64)
    valid = np.isfinite(w)
    dloc = int(params.local_distance // resolution)
    diamond = DiamondAccumulator(n, params.insulation_window, params.ignore_diags)
    hidden = np.zeros(0, np.int64) if hidden is None else np.asarray(hidden, np.int64)
    hi_i, hi_j = np.divmod(hidden, n)
    hidden_valid = valid[hi_i] & valid[hi_j] if len(hidden) else np.zeros(0, bool)

    def chunks():
        if n_cooler <= 0:
            return
        for b1, b2, cnt in iter_pixels(clr, lo, lo + n_cooler, params.chunk_pixels):
            i = b1 - lo
            j = b2 - lo
            cis = j < n_cooler
            i, j, cnt = i[cis], j[cis], cnt[cis]
            bal = cnt * w[i] * w[j]
            ok = np.isfinite(bal)
            if len(hidden):
                ok &= ~_in_sorted(i * n + j, hidden)
            yield i[ok], j[ok], bal[ok], len(b1)

    # -- pass 1: expected by distance, insulation sums ------------------------------------------------
    sum_d = np.zeros(n)
    n_pixels_read = 0
    n_cis_valid = 0
    for i, j, bal, nread in chunks():
        n_pixels_read += nread
        n_cis_valid += len(i)
        sum_d += np.bincount(j - i, bal, minlength=n)[:n]
        diamond.add(i, j, bal)
    t1 = time.time()
    npair = valid_pairs_by_distance(valid)
    if len(hidden):  # a held-out pair is not measured: it counts in no distance's pairs
        npair = npair - np.bincount((hi_j - hi_i)[hidden_valid], minlength=n)[:n]
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.where(npair > 0, sum_d / np.maximum(npair, 1), 0.0)
    n_valid_pairs = int(npair[1:].sum())
    scale = float(sum_d[1:].sum() / n_valid_pairs) if n_valid_pairs and sum_d[1:].sum() > 0 else 1.0
    medw = float(np.median(w[valid])) if valid.any() else 1.0
    pc = float(params.pseudocount) * medw * medw
    k = int(round(params.top_percent / 100.0 * n_valid_pairs))

    # -- pass 2: top-k by O/E, local pixels ------------------------------------------------------------
    top = TopK(k)
    loc_keys, loc_vals = [], []
    log_e = np.log(expected + pc)
    n_enriched = 0
    for i, j, bal, _ in chunks():
        d = j - i
        key = i * n + j
        off = d >= 1
        score = np.log(bal[off] + pc) - log_e[d[off]]
        enriched = score > 0  # observed above expected: a depleted pixel is never a "top" contact
        n_enriched += int(enriched.sum())
        top.add(key[off][enriched], score[enriched], bal[off][enriched])
        near = d <= dloc
        loc_keys.append(key[near])
        loc_vals.append(bal[near])
    t2 = time.time()
    top_keys, top_scores, top_vals = top.result()
    if n_enriched < k:
        log.warning("only %d bin pairs are observed above expected, fewer than the top %.3g%% (%d pairs): all of "
                    "them are top edges (a sparse cooler?)", n_enriched, params.top_percent, k)
    oe_threshold = float(np.exp(top_scores.min())) if len(top_scores) else float("nan")
    loc_keys = np.concatenate(loc_keys) if loc_keys else np.zeros(0, np.int64)
    loc_vals = np.concatenate(loc_vals) if loc_vals else np.zeros(0)

    # -- edge set (undirected, i <= j) -----------------------------------------------------------------
    idx = np.arange(n, dtype=np.int64)
    local_pairs = [idx[: n - d] * n + idx[: n - d] + d for d in range(1, min(dloc, n - 1) + 1)]
    local_pairs = np.concatenate(local_pairs) if local_pairs else np.zeros(0, np.int64)
    li, lj = np.divmod(local_pairs, n)
    local_pairs = local_pairs[valid[li] & valid[lj]]
    if len(hidden):
        local_pairs = local_pairs[~_in_sorted(local_pairs, hidden)]
    self_keys = idx * n + idx
    und = _sorted_unique(np.concatenate([top_keys, local_pairs, self_keys]))
    # observed balanced value of each edge: from the top buffer or the local pixels, else 0
    known_k = np.concatenate([top_keys, loc_keys])
    known_v = np.concatenate([top_vals, loc_vals])
    o = np.argsort(known_k)  # a key seen twice is the same pixel: same value
    known_k, known_v = known_k[o], known_v[o]
    del o
    first = np.r_[True, known_k[1:] != known_k[:-1]] if len(known_k) else np.zeros(0, bool)
    known_k, known_v = known_k[first], known_v[first]
    pos = np.minimum(np.searchsorted(known_k, und), max(len(known_k) - 1, 0))
    if len(known_k):
        obs = np.where(known_k[pos] == und, known_v[pos], 0.0)
    else:
        obs = np.zeros(len(und))
    del pos, known_k, known_v, loc_keys, loc_vals, top_vals
    ui, uj = np.divmod(und, n)
    ui, uj = ui.astype(np.int32), uj.astype(np.int32)  # n < 2^31 bins per contig
    ud = uj - ui
    is_self = ud == 0
    is_masked = is_self & ~valid[ui]
    top_sorted = np.sort(top_keys)
    tp = np.minimum(np.searchsorted(top_sorted, und), max(len(top_sorted) - 1, 0))
    is_top = (top_sorted[tp] == und) if len(top_sorted) else np.zeros(len(und), bool)
    del top_sorted, tp, und
    is_local = (ud >= 1) & (ud <= dloc)
    counts = {"n_undirected_edges": int(len(ud)), "n_self_loops": int(is_self.sum()),
              "n_top_edges": int(is_top.sum()), "n_local_edges": int(is_local.sum()),
              "n_local_only_edges": int((is_local & ~is_top).sum())}
    exp_e = expected[ud]
    feats = np.zeros((len(ud), len(EDGE_FEATURE_NAMES)), np.float32)
    feats[:, 0] = np.log1p(obs / scale)
    feats[:, 1] = np.where(is_masked, 0.0, np.log(obs + pc) - np.log(exp_e + pc))
    del obs
    feats[:, 2] = np.log10(ud * float(resolution) + 1.0)
    feats[:, 3] = np.where(is_masked, 0.0, np.log1p(exp_e / scale))
    del exp_e, ud
    feats[:, 4] = is_self
    feats[:, 5] = is_local
    feats[:, 6] = is_top
    feats[:, 7] = is_masked
    del is_local, is_top, is_masked
    if not np.isfinite(feats).all():  # pragma: no cover - guarded by construction
        raise FloatingPointError("non-finite edge feature")

    # -- symmetric CSR by destination ------------------------------------------------------------------
    # (scipy's COO -> CSR is a counting sort in C; the values carry the undirected edge id + 1)
    import scipy.sparse as sp
    offd = np.flatnonzero(~is_self).astype(np.int64)
    del is_self
    m = len(ui)
    idt = np.int32 if 2 * m < 2**31 - 1 else np.int64
    ids = np.concatenate([np.arange(1, m + 1, dtype=idt), (offd + 1).astype(idt)])
    dst = np.concatenate([ui, uj[offd]])
    src = np.concatenate([uj, ui[offd]])
    del ui, uj, offd
    csr = sp.csr_matrix((ids, (dst, src)), shape=(n, n))
    del ids, dst, src
    csr.sort_indices()
    indptr = csr.indptr.astype(np.int64)
    src = csr.indices.astype(np.int64)
    ef = feats[csr.data - 1]
    del csr, feats
    t3 = time.time()

    # -- insulation / boundaries -----------------------------------------------------------------------
    npix_ins = n_valid_pixels(~valid, params.insulation_window, params.ignore_diags)
    if len(hidden):  # held-out pixels are not pixels of any diamond
        held = DiamondAccumulator(n, params.insulation_window, params.ignore_diags)
        held.add(hi_i[hidden_valid], hi_j[hidden_valid], np.ones(int(hidden_valid.sum())))
        npix_ins = npix_ins - np.rint(held.sums())
    ins = log2_insulation(diamond.sums(), npix_ins)
    max_pix = float(n_valid_pixels(np.zeros(max(2 * params.insulation_window + 1, 1), bool),
                                   params.insulation_window, params.ignore_diags).max())
    boundary, strength, thr = call_boundaries(ins, npix_ins, params.boundary_threshold,
                                              params.min_frac_valid_pixels, max_pix)

    n_edges = int(len(src))
    stats = {
        "n_bins": int(n), "n_edges": n_edges,
        "density": float(n_edges / (n * n)) if n else 0.0,
        **counts,
        "top_k": k, "n_enriched_pairs": n_enriched, "n_valid_pairs": n_valid_pairs, "oe_threshold": oe_threshold,
        "masked_fraction": float((~valid).mean()) if n else 0.0, "n_masked_bins": int((~valid).sum()),
        "n_pixels_read": int(n_pixels_read), "n_hidden_pairs": int(len(hidden)), "n_cis_pixels_valid": int(n_cis_valid),
        "balanced_scale": scale, "pseudocount_balanced": pc,
        "boundary_threshold_value": thr, "n_boundaries": int(boundary.sum()),
        "seconds": {"pass1": t1 - t0, "pass2": t2 - t1, "edges": t3 - t2, "insulation": time.time() - t3},
    }
    log.info("graph: %d bins, %d pixels read, %d directed edges (density %.4f), %d top O/E pairs",
             n, n_pixels_read, n_edges, stats["density"], stats["n_top_edges"])
    return {"indptr": indptr, "indices": src.astype(np.int64), "edge_features": ef,
            "expected": expected, "insulation": ins, "boundary": boundary, "boundary_strength": strength,
            "insulation_n_pixels": npix_ins, "stats": stats}
