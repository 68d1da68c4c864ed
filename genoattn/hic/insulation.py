"""Diamond insulation score and TAD boundary calls, accumulated pixel chunk by pixel chunk.

Definition (the same as ``cooltools.insulation``, so the two agree on the same data):
the score of bin k is the mean balanced contact over the valid pixels (r, c) of the diamond
``k - w < r <= k <= c < k + w`` with ``c - r >= ignore_diags``; it is divided by the chromosome's
median and log2-transformed (0 and non-finite -> NaN). Boundaries are local minima of the
log2 score; their strength is the topographic prominence (lowest point between the minimum and the
nearest deeper minimum on each side, the smaller of the two sides), computed over bins whose
diamond has at least ``min_frac_valid_pixels`` of the possible pixels. A boundary is a minimum
whose strength passes the threshold: ``li`` / ``otsu`` (automatic, as cooltools) or a number.
"""

from __future__ import annotations

import numpy as np


class DiamondAccumulator:
    """Sums balanced contacts of each bin's diamond from streamed intra-chromosomal pixels."""

    def __init__(self, n_bins: int, window: int, ignore_diags: int = 2):
        self.n, self.w, self.ignore = int(n_bins), int(window), int(ignore_diags)
        self.diff = np.zeros(self.n + 1)

    def add(self, i: np.ndarray, j: np.ndarray, balanced: np.ndarray) -> None:
        """Valid pixels (local bin indices, i <= j) with finite balanced values."""
        d = j - i
        keep = (d >= self.ignore) & (d <= 2 * self.w - 2)
        if not keep.any():
            return
        i, j, v = i[keep], j[keep], balanced[keep]
        klo = np.maximum(i, j - self.w + 1)
        khi = np.minimum(j, i + self.w - 1)
        self.diff += np.bincount(klo, v, minlength=self.n + 1)[: self.n + 1]
        self.diff -= np.bincount(khi + 1, v, minlength=self.n + 1)[: self.n + 1]

    def sums(self) -> np.ndarray:
        return np.cumsum(self.diff)[: self.n]


def n_valid_pixels(bad: np.ndarray, window: int, ignore_diags: int = 2) -> np.ndarray:
    """Number of pixels of each bin's diamond whose two bins are both valid."""
    n = len(bad)
    good = (~np.asarray(bad, bool)).astype(np.int64)
    out = np.zeros(n)
    for a in range(window):          # row offset k - r
        for b in range(window):      # column offset c - k
            if a + b < ignore_diags:
                continue
            k = np.arange(n)
            r, c = k - a, k + b
            ok = (r >= 0) & (c < n)
            val = np.zeros(n)
            val[ok] = good[r[ok]] * good[c[ok]]
            out += val
    return out


def log2_insulation(sums: np.ndarray, n_pixels: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        score = sums / n_pixels
        med = np.nanmedian(score[np.isfinite(score)]) if np.isfinite(score).any() else np.nan
        score = score / med
        score[score == 0] = np.nan
        out = np.log2(score)
    out[~np.isfinite(out)] = np.nan
    return out


def peak_prominence(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of ``arr`` (NaNs skipped when finding neighbours) and their prominence."""
    arr = np.asarray(arr, dtype=np.float64)
    n = len(arr)
    idx = np.flatnonzero(~np.isnan(arr))
    x = arr[idx]
    if len(x) < 3:
        return np.zeros(0, np.int64), np.zeros(0)
    is_max = np.r_[False, x[1:-1] > x[:-2], False] & np.r_[False, x[1:-1] > x[2:], False]
    is_min = np.r_[False, x[1:-1] < x[:-2], False] & np.r_[False, x[1:-1] < x[2:], False]
    maxs, mins = idx[is_max], idx[is_min]
    proms = np.full(len(maxs), np.nan)
    left = np.full(len(maxs), -1)
    right = np.full(len(maxs), -1)
    with np.errstate(invalid="ignore"):
        for t, p in enumerate(maxs):
            higher = np.flatnonzero(arr[:p] > arr[p])
            if len(higher):
                left[t] = higher[-1]
            higher = np.flatnonzero(arr[p + 1:] > arr[p])
            if len(higher):
                right[t] = p + 1 + higher[0]
            lp = arr[p] - np.nanmin(arr[left[t]:p]) if left[t] >= 0 else np.nan
            rp = arr[p] - np.nanmin(arr[p:right[t]]) if right[t] >= 0 else np.nan
            proms[t] = np.nanmin([lp, rp]) if not (np.isnan(lp) and np.isnan(rp)) else np.nan
    glob = np.flatnonzero((left == -1) & (right == -1))
    if len(glob):
        g, p = glob[0], maxs[glob[0]]
        proms[g] = arr[p] - (np.nanmin(arr[mins]) if len(mins) else np.nanmin(arr[:n]))
    return maxs, proms


def threshold_li(x: np.ndarray, tol: float | None = None) -> float:
    """Li's iterative minimum cross-entropy threshold (as skimage.filters.threshold_li)."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if len(x) == 0 or np.all(x == x[0]):
        return float(x[0]) if len(x) else np.nan
    off = x.min()
    y = x - off
    tol = tol or np.min(np.diff(np.unique(y))) / 2
    t_next = y.mean()
    t_curr = -2 * tol
    while abs(t_next - t_curr) > tol:
        t_curr = t_next
        fore = y > t_curr
        mean_fore = y[fore].mean()
        mean_back = y[~fore].mean()
        if mean_back == 0:
            break
        t_next = (mean_back - mean_fore) / (np.log(mean_back) - np.log(mean_fore))
    return float(t_next + off)


def threshold_otsu(x: np.ndarray, nbins: int = 256) -> float:
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if len(x) == 0 or np.all(x == x[0]):
        return float(x[0]) if len(x) else np.nan
    hist, edges = np.histogram(x, bins=nbins)
    centers = (edges[:-1] + edges[1:]) / 2
    w1 = np.cumsum(hist)
    w2 = np.cumsum(hist[::-1])[::-1]
    m1 = np.cumsum(hist * centers) / w1
    m2 = (np.cumsum((hist * centers)[::-1]) / w2[::-1])[::-1]
    var = w1[:-1] * w2[1:] * (m1[:-1] - m2[1:]) ** 2
    return float(centers[np.argmax(var)])


def call_boundaries(log2_ins: np.ndarray, n_pixels: np.ndarray, threshold="li",
                    min_frac_valid_pixels: float = 0.66, max_pixels: float | None = None):
    """Return (boundary bool, strength float64 with 0 where not a minimum)."""
    n = len(log2_ins)
    max_pixels = max_pixels if max_pixels is not None else (n_pixels.max() if n else 0)
    ok = n_pixels >= min_frac_valid_pixels * max_pixels
    strength = np.zeros(n)
    sub = np.flatnonzero(ok)
    pos, proms = peak_prominence(-log2_ins[sub])
    strength[sub[pos]] = np.nan_to_num(proms, nan=0.0)
    cand = strength[strength > 0]
    if isinstance(threshold, str):
        t = {"li": threshold_li, "otsu": threshold_otsu}[threshold.lower()](cand) if len(cand) else np.inf
    else:
        t = float(threshold)
    boundary = (strength > 0) & (strength >= t)
    return boundary, strength, float(t)
