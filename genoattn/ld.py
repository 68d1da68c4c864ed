"""LD blocks from a cohort's genotypes (r^2 decay between neighbouring variants).

Method (deterministic, streamed over variant chunks):

1. dosage = number of non-reference alleles of each call (missing calls imputed by the variant mean),
   on at most ``max_samples`` samples (evenly spaced over the stored order);
2. r^2 between every variant and its next ``span`` variants on the same contig;
3. the linkage of the gap between variants g and g+1 is the largest r^2 of any pair (a, b) with
   a <= g < b (and b - a <= span): a gap whose linkage is below ``min_r2`` is a block boundary
   (LD has decayed across it); contig changes are always boundaries. Unlinked pairs have
   r^2 ~ 1/n by chance (n samples), so a small cohort gives longer blocks;
4. a block with fewer than ``min_variants`` variants (rare variants are in low LD with everything, so
   r^2 alone makes many one-variant blocks) is merged into the block before it on the same contig
   (the next one when it is the contig's first);
5. blocks longer than ``max_variants`` are split into equal parts.

Blocks are half-open variant-index ranges [start, end) in the genotypes store's variant order: they
are contiguous, do not overlap and cover every variant (tested).
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger("genoattn.ld")



def dosage(gt: np.ndarray) -> np.ndarray:
    """call_genotype [V, S, P] int8 -> standardised dosage [V, S] float32 (missing -> 0 = mean)."""
    real = gt != -2
    called = (gt >= 0) | ~real
    full = called.all(axis=2)
    d = (gt > 0).sum(axis=2).astype(np.float32)
    n = np.maximum(full.sum(axis=1, keepdims=True), 1)
    mean = np.where(full, d, 0).sum(axis=1, keepdims=True) / n
    x = np.where(full, d - mean, 0.0).astype(np.float32)
    sd = np.sqrt((x * x).sum(axis=1, keepdims=True) / n)
    return np.where(sd > 0, x / np.maximum(sd, 1e-12), 0.0).astype(np.float32), n[:, 0]


def gap_linkage(store, span: int, max_samples: int, chunk: int = 20000) -> np.ndarray:
    """Max r^2 across each gap between consecutive variants (length V-1; 0 across contigs)."""
    gt = store["call_genotype"]
    V, S = gt.shape[0], gt.shape[1]
    contig = np.asarray(store["variant_contig"][:])
    if S > max_samples:
        sidx = np.unique(np.linspace(0, S - 1, max_samples).round().astype(int))
    else:
        sidx = None
    score = np.zeros(max(V - 1, 0), np.float32)
    for c0 in range(0, V, chunk):
        lo, hi = max(0, c0 - span), min(V, c0 + chunk)
        g = np.asarray(gt[lo:hi])
        if sidx is not None:
            g = g[:, sidx]
        z, n = dosage(g)
        same = contig[lo:hi]
        for d in range(1, min(span, hi - lo - 1) + 1):
            a = np.arange(hi - lo - d)
            b = a + d
            new = (b + lo) >= c0 if c0 else np.ones_like(a, bool)
            r = (z[a] * z[b]).sum(axis=1) / np.maximum(np.minimum(n[a], n[b]), 1)
            r2 = np.clip(r * r, 0, 1)
            r2 = np.where(new & (same[a] == same[b]), r2, 0.0).astype(np.float32)
            for t in range(d):
                gi = a + lo + t
                ok = gi < V - 1
                score[gi[ok]] = np.maximum(score[gi[ok]], r2[ok])
    return score


def _merge_small(starts, ends, contig, min_variants):
    out_s, out_e = [], []
    for s, e in zip(starts.tolist(), ends.tolist()):
        if out_s and contig[out_s[-1]] == contig[s] and (e - s < min_variants or out_e[-1] - out_s[-1] < min_variants):
            out_e[-1] = e  # merge into the previous block of the same contig
        else:
            out_s.append(s); out_e.append(e)
    return np.asarray(out_s, np.int64), np.asarray(out_e, np.int64)


def ld_blocks(store, span: int = 10, min_r2: float = 0.3, max_variants: int = 1000,
              max_samples: int = 5000, min_variants: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, linkage) of LD blocks; start/end are variant indices (half-open)."""
    contig = np.asarray(store["variant_contig"][:])
    V = contig.shape[0]
    if V == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    score = gap_linkage(store, span, max_samples)
    boundary = (score < min_r2) | (contig[1:] != contig[:-1])
    starts = np.concatenate([[0], np.flatnonzero(boundary) + 1]).astype(np.int64)
    ends = np.concatenate([starts[1:], [V]]).astype(np.int64)
    if min_variants > 1:
        starts, ends = _merge_small(starts, ends, contig, min_variants)
    out_s, out_e = [], []
    for s, e in zip(starts, ends):
        n = e - s
        if n > max_variants:
            parts = int(np.ceil(n / max_variants))
            cuts = s + np.round(np.linspace(0, n, parts + 1)).astype(np.int64)
            out_s.extend(cuts[:-1]); out_e.extend(cuts[1:])
        else:
            out_s.append(s); out_e.append(e)
    return np.asarray(out_s, np.int64), np.asarray(out_e, np.int64), score


def write_ld_blocks(genotypes: str, out: str, options: dict, config: dict | None = None) -> dict:
    """results/{cohort}/ld_blocks.zarr: the LD blocks of a genotypes store with genomic coordinates.

    Arrays (dim ``ld_block``): ``ld_block_start``/``ld_block_end`` (variant index range, half-open),
    ``ld_block_contig`` (index into contig_id), ``ld_block_chrom`` (name), ``ld_block_bp_start``/
    ``ld_block_bp_end`` (0-based half-open bp: first variant's position to last variant's + 1),
    ``ld_block_n_variants``; ``gap_r2`` [variants - 1] (dim ``variant_gap``): the linkage of each gap.
    """
    from genoattn.io.store import atomic_store, mark_coordinates, open_group, upstream_inputs

    opts = dict(options)  # the validated levels.level6.ld_blocks section
    g = open_group(genotypes)
    start, end, score = ld_blocks(g, opts["span"], opts["min_r2"], opts["max_variants"], opts["max_samples"],
                                  opts["min_variants"])
    contig = np.asarray(g["variant_contig"][:])
    pos0 = np.asarray(g["variant_position"][:]) - 1
    names = np.array([str(x) for x in g["contig_id"][:]], dtype=object)
    bc = contig[start]
    attrs = {"level": "ld_blocks", "model": {"weights": "none"}, "config": {**opts, **(config or {})},
             "inputs": upstream_inputs([genotypes]), "genotypes": str(genotypes),
             "method": "boundary where max r^2 across the gap (pairs within `span` variants) < min_r2; "
                       "contig changes are boundaries; blocks longer than max_variants split evenly",
             "n_variants": int(contig.shape[0])}
    with atomic_store(out, attrs=attrs) as w:
        w.write("ld_block_start", start, dims=("ld_block",))
        w.write("ld_block_end", end, dims=("ld_block",))
        w.write("ld_block_contig", bc.astype(np.int16), dims=("ld_block",))
        w.write("ld_block_chrom", names[bc], dims=("ld_block",))
        w.write("ld_block_bp_start", pos0[start], dims=("ld_block",))
        w.write("ld_block_bp_end", pos0[end - 1] + 1, dims=("ld_block",))
        w.write("ld_block_n_variants", (end - start).astype(np.int64), dims=("ld_block",))
        w.write("gap_r2", score, dims=("variant_gap",))
        mark_coordinates(w, "ld_block_chrom", "ld_block_bp_start", "ld_block_bp_end")
    sizes = end - start
    summary = {"n_blocks": int(len(start)), "median_variants": float(np.median(sizes)),
               "max_variants": int(sizes.max())}
    log.info("%s: %d LD blocks (median %.0f variants, max %d)", genotypes, *summary.values())
    return summary
