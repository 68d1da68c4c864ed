"""Trans-chromosomal links for level 5: top inter-chromosomal Hi-C contacts + BEDPE breakpoints.

Hi-C links: every inter-chromosomal pixel between two unmasked bins of reference contigs is scored
by observed/expected, expected = the mean balanced contact of that chromosome pair over its valid
bin pairs (zero pixels included, as ``cooltools.expected_trans``), with the same pseudocount as the
cis graph (``pseudocount`` reads in balanced units). The top ``trans_top_percent`` % of those
non-zero pixels are kept (among those above expected, O/E > 1), at most ``trans_max_links``, exactly, in two streaming passes over the
pixel table in row blocks (memory O(kept links + one chunk)).

Breakpoints: each BEDPE row (0-based half-open) links the bin holding the midpoint of its first
interval to the bin holding the midpoint of its second (intra-chromosomal rows, e.g. inversions,
are kept too); ``score`` is NaN for them. Contigs are matched through the alias map / chr-prefix
policy; a contig not in the reference is an error naming the line; a reference contig left out of
this run (exclude) is skipped with a warning.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from genoattn.contigs import ContigMap
from genoattn.hic.graph import TopK, iter_pixels
from genoattn.io.hic import HicError, HicSource, read_bedpe

log = logging.getLogger("genoattn.hic")


def _bin_lookup(src: HicSource, contigs: list[str]):
    """Cooler bin id -> (contig index or -1, local bin index); weights per cooler bin (NaN = unusable)."""
    nb = len(src.weights)
    cid = np.full(nb, -1, np.int64)
    local = np.zeros(nb, np.int64)
    w = np.full(nb, np.nan)
    n_valid = np.zeros(len(contigs), np.int64)
    for c, name in enumerate(contigs):
        m = src.contigs[name]
        if m.cooler is None:
            continue
        n_ref = -(-m.reference_length // src.resolution)
        hi = m.lo + min(n_ref, m.hi - m.lo)
        cid[m.lo:hi] = c
        local[m.lo:hi] = np.arange(hi - m.lo)
        w[m.lo:hi] = src.weights[m.lo:hi]
        n_valid[c] = int(np.isfinite(src.weights[m.lo:hi]).sum())
    return cid, local, w, n_valid


def hic_trans_links(src: HicSource, contigs: list[str], top_percent: float, max_links: int,
                    pseudocount: float = 1.0, chunk_pixels: int = 5_000_000):
    t0 = time.time()
    cid, local, w, n_valid = _bin_lookup(src, contigs)
    nc = len(contigs)
    nb = len(w)
    valid_w = w[np.isfinite(w)]
    medw = float(np.median(valid_w)) if len(valid_w) else 1.0
    pc = pseudocount * medw * medw
    used = [src.contigs[c] for c in contigs if src.contigs[c].cooler is not None]

    def chunks():
        for m in used:
            for b1, b2, cnt in iter_pixels(src.clr, m.lo, m.hi, chunk_pixels):
                c1, c2 = cid[b1], cid[b2]
                keep = (c1 >= 0) & (c2 >= 0) & (c1 != c2)
                b1, b2, cnt, c1, c2 = b1[keep], b2[keep], cnt[keep], c1[keep], c2[keep]
                bal = cnt * w[b1] * w[b2]
                ok = np.isfinite(bal) & (bal > 0)
                yield b1[ok], b2[ok], bal[ok], c1[ok], c2[ok], len(keep)

    sums = np.zeros((nc, nc))
    n_nonzero = 0
    n_read = 0
    for b1, b2, bal, c1, c2, nread in chunks():
        n_read += nread
        n_nonzero += len(b1)
        lo_, hi_ = np.minimum(c1, c2), np.maximum(c1, c2)
        sums += np.bincount(lo_ * nc + hi_, bal, minlength=nc * nc).reshape(nc, nc)
    pairs = np.outer(n_valid, n_valid).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.where(pairs > 0, sums / np.maximum(pairs, 1), 0.0)
    expected = np.triu(expected) + np.triu(expected, 1).T
    k = min(int(round(top_percent / 100.0 * n_nonzero)), int(max_links))
    top = TopK(k)
    n_enriched = 0
    for b1, b2, bal, c1, c2, _ in chunks():
        score = np.log(bal + pc) - np.log(expected[c1, c2] + pc)
        enriched = score > 0  # observed above the pair's mean trans contact
        n_enriched += int(enriched.sum())
        top.add((b1 * nb + b2)[enriched], score[enriched], bal[enriched])
    keys, scores, _ = top.result()
    order = np.argsort(keys)
    keys, scores = keys[order], scores[order]
    b1, b2 = np.divmod(keys, nb)
    res = src.resolution
    stats = {"n_trans_pixels_nonzero": int(n_nonzero), "n_pixels_read": int(n_read), "n_hic_links": int(len(keys)),
             "trans_top_k": int(k), "n_trans_enriched": int(n_enriched), "pseudocount_balanced": pc,
             "mean_trans_balanced": float(sums.sum() / max(np.triu(pairs, 1).sum(), 1)),
             "seconds": time.time() - t0}
    return {"chrom1": np.array([contigs[c] for c in cid[b1]], dtype=object), "start1": local[b1] * res,
            "chrom2": np.array([contigs[c] for c in cid[b2]], dtype=object), "start2": local[b2] * res,
            "score": np.exp(scores), "source": np.array(["hic"] * len(keys), dtype=object)}, stats


def breakpoint_links(path: str, src: HicSource, contigs: list[str], all_reference: list[str],
                     aliases=None, chr_prefix: str = "auto"):
    cmap = ContigMap(all_reference, aliases, chr_prefix)
    res = src.resolution
    selected = set(contigs)
    out = {k: [] for k in ("chrom1", "start1", "chrom2", "start2")}
    skipped = 0
    for c1, s1, e1, c2, s2, e2, line in read_bedpe(path):
        names = []
        for c in (c1, c2):
            r = cmap.map(c)
            if r is None:
                raise HicError(f"{path}: line {line}: contig {c!r} is not in the reference (which has "
                               f"{', '.join(all_reference[:6])}{' ...' if len(all_reference) > 6 else ''}). "
                               f"Fix: add it to references.<name>.contig_aliases or correct the BEDPE.")
            names.append(r)
        if names[0] not in selected or names[1] not in selected:
            skipped += 1
            log.warning("%s: line %d: %s/%s not among the contigs of this run; breakpoint skipped",
                        path, line, names[0], names[1])
            continue
        for (name, s, e), key in zip(((names[0], s1, e1), (names[1], s2, e2)), ("1", "2")):
            length = src.contigs[name].reference_length
            if s >= length:
                raise HicError(f"{path}: line {line}: {name}:{s}-{e} lies past the end of {name} "
                               f"({length} bp). Fix: use coordinates of the reference assembly.")
            mid = (s + min(max(e, s + 1), length) - 1) // 2
            out["chrom" + key].append(name)
            out["start" + key].append((mid // res) * res)
    n = len(out["chrom1"])
    return ({"chrom1": np.array(out["chrom1"], dtype=object), "start1": np.array(out["start1"], np.int64),
             "chrom2": np.array(out["chrom2"], dtype=object), "start2": np.array(out["start2"], np.int64),
             "score": np.full(n, np.nan), "source": np.array(["breakpoint"] * n, dtype=object)},
            {"n_breakpoint_links": n, "n_breakpoints_skipped": skipped})


def check_breakpoints(path: str, reference_lengths: dict[str, int], aliases=None, chr_prefix: str = "auto") -> str:
    """The BEDPE read as the trans-link job reads it, for the pre-flight: well-formed lines on reference
    contigs, inside them. Returns a summary."""
    cmap = ContigMap(list(reference_lengths), aliases, chr_prefix)
    rows = read_bedpe(path)
    for c1, s1, e1, c2, s2, e2, line in rows:
        for c, s, e in ((c1, s1, e1), (c2, s2, e2)):
            name = cmap.map(c)
            if name is None:
                raise HicError(f"{path}: line {line}: contig {c!r} is not in the reference (which has "
                               f"{', '.join(list(reference_lengths)[:6])} ...). Fix: add it to "
                               "references.<name>.contig_aliases or correct the BEDPE.")
            if s >= reference_lengths[name]:
                raise HicError(f"{path}: line {line}: {name}:{s}-{e} lies past the end of {name} "
                               f"({reference_lengths[name]} bp). Fix: use coordinates of the reference assembly.")
    return f"{len(rows)} breakpoint pairs"
