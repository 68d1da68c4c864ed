"""Report figures, one per level (rules plot_<level> in workflow/rules/report.smk).

Reads the stores only through their contracts (HELPERS.md, the level modules' docstrings) with
xarray; a store whose variables are not the expected ones still gets a generic PCA figure rather
than a failed report. Importable: ``plot(level, stores, out, hic=None)`` (used by the tests).
"""


import logging
import math
import os
from pathlib import Path

import numpy as np

log = logging.getLogger("genoattn.plots")
MAX_POINTS = 20000  # per store in the PCA scatter plots
MAX_DRAWN_BINS = 2000  # bins per side of a drawn matrix: a longer contig is drawn in blocks of bins (memory bound)


def _block(n: int) -> int:
    """Bins per drawn pixel so that at most MAX_DRAWN_BINS are drawn (1 for contigs up to that length)."""
    return max(1, math.ceil(n / MAX_DRAWN_BINS))


# -- helpers ------------------------------------------------------------------------------------
def _open(path):
    import xarray as xr

    return xr.open_zarr(path, consolidated=False)


def _contig_of(path: str) -> str:
    return Path(path).name.removesuffix(".zarr")


def _pca(x: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Scores [n, k] and explained-variance ratios [k] (float64, rows with NaN ignored upstream)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        return np.zeros((x.shape[0] if x.ndim else 0, k)), np.zeros(k)
    x = x - x.mean(0, keepdims=True)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    k_eff = min(k, s.size)
    scores = np.zeros((x.shape[0], k))
    scores[:, :k_eff] = u[:, :k_eff] * s[:k_eff]
    var = s**2
    ratio = np.zeros(k)
    if var.sum() > 0:
        ratio[:k_eff] = var[:k_eff] / var.sum()
    return scores, ratio


def _embedding_vars(ds) -> list[str]:
    """Float 2-D data variables (sequence dim, feature dim), 'embedding' names first."""
    names = [n for n, v in ds.data_vars.items() if v.ndim == 2 and np.issubdtype(v.dtype, np.floating)]
    names.sort(key=lambda n: (0 if "embedding" in n else 1, -ds[n].shape[0]))
    return names


def _figure(ncols: int, width: float = 6.0, height: float = 4.5):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, axes[0]


def _cmap(name: str):
    import matplotlib

    cmap = matplotlib.colormaps[name].copy()
    cmap.set_bad("0.7")
    return cmap


_WEIGHTS = ""  # "trained (...)" / "untrained (seeded weights)": set by plot(), shown above every figure


def _save(fig, out: str) -> None:
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    if _WEIGHTS:
        fig.suptitle(f"weights: {_WEIGHTS}", fontsize=9, color="0.3" if _WEIGHTS.startswith("trained") else "firebrick")
    tmp = f"{out}.tmp-{os.getpid()}.png"
    fig.tight_layout()
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, out)
    import matplotlib.pyplot as plt

    plt.close(fig)


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


# -- level 1 ------------------------------------------------------------------------------------
def plot_level1(stores: list[str], out: str) -> None:
    """PC1 of window embeddings along each contig (one row per contig)."""
    per = []
    for p in stores:
        ds = _open(p)
        emb = np.asarray(ds["window_embedding"].values, dtype=np.float64)
        start = np.asarray(ds["window_start"].values)
        skipped = np.asarray(ds["window_skipped"].values, dtype=bool) if "window_skipped" in ds else np.zeros(len(start), bool)
        per.append((_contig_of(p), start, emb, skipped))
    fig, (ax, ax2) = _figure(2)
    rows = [e[~s] for _, _, e, s in per if (~s).any()]
    if not rows:
        _empty(ax, "no windows")
        _empty(ax2, "")
        _save(fig, out)
        return
    allx = np.concatenate(rows)
    mean = allx.mean(0)
    _, _, vt = np.linalg.svd(allx - mean, full_matrices=False)
    _, ratio = _pca(allx, k=min(10, allx.shape[1]))
    pc1 = vt[0]
    vmax = max(float(np.abs((allx - mean) @ pc1).max()), 1e-12)
    cmap = _cmap("coolwarm")
    for i, (name, start, emb, skipped) in enumerate(per):
        score = (emb - mean) @ pc1
        score = np.ma.masked_array(score, mask=skipped)  # all-N windows: grey (cmap "bad")
        end = (start[-1] + (start[1] - start[0] if len(start) > 1 else 1)) / 1e6 if len(start) else 0
        ax.imshow(score[None, :], extent=(0, end, i + 0.4, i - 0.4), aspect="auto", cmap=cmap,
                  vmin=-vmax, vmax=vmax, interpolation="nearest")
    ax.set_ylim(len(per) - 0.5, -0.5)
    ax.set_xlim(0, max((s[-1] for _, s, _, _ in per if len(s)), default=1) / 1e6 * 1.02)
    ax.set_yticks(range(len(per)), [n for n, *_ in per])
    ax.set_xlabel("position (Mbp)")
    ax.set_title("level 1: PC1 of window embeddings")
    ax2.bar(np.arange(1, len(ratio) + 1), ratio)
    ax2.set_xlabel("principal component")
    ax2.set_ylabel("fraction of variance")
    ax2.set_title(f"{allx.shape[0]} windows, dim {allx.shape[1]}")
    _save(fig, out)


# -- generic (levels 2, 3, 6; fallback of the others) ---------------------------------------------
def plot_generic(stores: list[str], out: str, title: str) -> None:
    """First two PCs of the main embedding variable of each store, coloured by store."""
    fig, (ax,) = _figure(1, width=7.0)
    chunks, labels = [], []
    for p in stores:
        ds = _open(p)
        names = _embedding_vars(ds)
        if not names:
            continue
        var = ds[names[0]]
        n = var.shape[0]
        if n > MAX_POINTS:  # a deterministic subsample, read row by row: a level-2 store is GBs
            var = var.isel({var.dims[0]: np.linspace(0, n - 1, MAX_POINTS).astype(np.int64)})
        x = np.asarray(var.values, dtype=np.float64)
        x = x[np.isfinite(x).all(1)]
        if len(x):
            chunks.append(x)
            labels.append((_contig_of(p), names[0], len(x)))
    if not chunks:
        _empty(ax, "no embeddings in the stores")
        _save(fig, out)
        return
    allx = np.concatenate(chunks)
    scores, ratio = _pca(allx)
    offset = 0
    for (name, var, n), _ in zip(labels, chunks):
        ax.scatter(scores[offset:offset + n, 0], scores[offset:offset + n, 1], s=6, alpha=0.6,
                   label=f"{name} ({n})" if len(labels) <= 20 else None)
        offset += n
    ax.set_xlabel(f"PC1 ({ratio[0]:.0%})")
    ax.set_ylabel(f"PC2 ({ratio[1]:.0%})")
    ax.set_title(f"{title}: {labels[0][1]} [{allx.shape[0]} x {allx.shape[1]}]")
    if len(labels) <= 20:
        ax.legend(fontsize=7, markerscale=2, ncol=2, loc="upper right")
    _save(fig, out)


def _longest(stores: list[str]) -> str:
    sizes = []
    for p in stores:
        ds = _open(p)
        sizes.append(int(ds.sizes.get("bin", 0)))
    return stores[int(np.argmax(sizes))]


# -- Hi-C ---------------------------------------------------------------------------------------
def plot_hic(stores: list[str], out: str, hic: str | None = None) -> None:
    """Contact map (cooler) beside the graph edges, and insulation with TAD boundaries."""
    fig, (ax, ax2) = _figure(2)
    path = _longest(stores)
    ds = _open(path)
    contig = _contig_of(path)
    n = int(ds.sizes["bin"])
    f = _block(n)                       # a human chr1 at 10 kb (24,896 bins) is drawn in 13-bin blocks
    m_n = math.ceil(n / f)
    indptr = np.asarray(ds["indptr"].values)
    indices = np.asarray(ds["indices"].values)
    dst = np.repeat(np.arange(n), np.diff(indptr))
    sums = np.zeros((m_n, m_n))
    have_map = False
    cooler_chrom = ds.attrs.get("cooler_chrom") or contig
    uri = (ds.attrs.get("cooler") or {}).get("uri") or hic
    if uri:
        try:
            import cooler

            clr = cooler.Cooler(uri)
            balance = ds.attrs.get("balance", "weight")
            # sparse: only the contig's pixels, never its dense n x n matrix
            m = clr.matrix(balance=balance if balance in clr.bins().columns else False, sparse=True).fetch(cooler_chrom)
            r, c, v = m.row, m.col, np.asarray(m.data, dtype=np.float64)
            up = r <= c                     # the upper triangle, mirrored (whether or not cooler filled both)
            r, c, v = np.concatenate([r[up], c[up & (r != c)]]), np.concatenate([c[up], r[up & (r != c)]]), \
                np.concatenate([v[up], v[up & (r != c)]])
            ok = (r < n) & (c < n) & np.isfinite(v)
            np.add.at(sums, (r[ok] // f, c[ok] // f), v[ok])
            have_map = True
        except Exception as exc:  # the figure still shows the graph
            log.warning("could not read the contact map from %s: %s", uri, exc)
    with np.errstate(divide="ignore", invalid="ignore"):
        logm = np.log10(sums / (f * f)) if have_map else np.full((m_n, m_n), np.nan)
    logm[~np.isfinite(logm)] = np.nan
    logm[np.triu_indices(m_n, 1)] = np.nan
    im = ax.imshow(logm, cmap="YlOrRd", interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.7, label="log10 balanced contacts" + (f" (mean of {f}x{f} bins)" if f > 1 else ""))
    upper = dst < indices
    pairs = np.unique(np.stack([indices[upper] // f, dst[upper] // f]), axis=1) if upper.any() else np.zeros((2, 0), int)
    ax.scatter(pairs[0], pairs[1], s=max(0.5, 40.0 / max(m_n, 1)), c="tab:blue", marker="s",
               linewidths=0, label=f"graph edges ({len(indices)})")
    ax.set_title(f"{contig}: Hi-C map (lower) and graph edges (upper)")
    ax.set_xlabel("bin" if f == 1 else f"bin / {f}")
    ax.set_ylabel("bin" if f == 1 else f"bin / {f}")
    ax.legend(loc="lower left", fontsize=7)
    start = np.asarray(ds["start"].values) / 1e6
    if "insulation" in ds:
        ins = np.asarray(ds["insulation"].values, dtype=np.float64)
        ax2.plot(start, ins, lw=1, color="k", label="insulation")
    if "boundary" in ds:
        b = np.asarray(ds["boundary"].values, dtype=bool)
        for x in start[b]:
            ax2.axvline(x, color="tab:red", lw=0.8, alpha=0.7)
        ax2.plot([], [], color="tab:red", label=f"TAD boundaries ({int(b.sum())})")
    if "masked" in ds:
        msk = np.asarray(ds["masked"].values, dtype=bool)
        step = float(start[1] - start[0]) if len(start) > 1 else 0.01
        for x in start[msk]:
            ax2.axvspan(x, x + step, color="0.85", lw=0)
    ax2.set_xlabel("position (Mbp)")
    ax2.set_title(f"{contig}: insulation and boundaries")
    ax2.legend(fontsize=7)
    _save(fig, out)


# -- level 4 ------------------------------------------------------------------------------------
def _cosine(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    y = np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
    return y @ y.T


def plot_level4(stores: list[str], out: str) -> None:
    fig, (ax, ax2) = _figure(2)
    path = _longest(stores)
    ds = _open(path)
    emb = np.asarray(ds["embedding"].values, dtype=np.float64)
    masked = np.asarray(ds["masked"].values, dtype=bool) if "masked" in ds else np.zeros(len(emb), bool)
    f = _block(len(emb))    # blocks of f bins: their unmasked bins' mean embedding (at most MAX_DRAWN_BINS^2 drawn)
    groups = np.arange(len(emb)) // f
    m_n = int(groups[-1]) + 1 if len(emb) else 0
    sums = np.zeros((m_n, emb.shape[1]))
    np.add.at(sums, groups[~masked], emb[~masked])
    counts = np.bincount(groups[~masked], minlength=m_n)
    blocks = sums / np.maximum(counts, 1)[:, None]
    sim = _cosine(blocks)
    sim[counts == 0, :] = np.nan
    sim[:, counts == 0] = np.nan
    im = ax.imshow(sim, cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.7, label="cosine similarity")
    ax.set_title(f"{_contig_of(path)}: level-4 bin similarity" + (f" ({f}-bin means)" if f > 1 else ""))
    ax.set_xlabel("bin" if f == 1 else f"bin / {f}")
    ax.set_ylabel("bin" if f == 1 else f"bin / {f}")
    rows = []
    for p in stores:
        d = _open(p)
        e = np.asarray(d["embedding"].values, dtype=np.float64)
        m = np.asarray(d["masked"].values, dtype=bool) if "masked" in d else np.zeros(len(e), bool)
        rows.append((_contig_of(p), np.asarray(d["start"].values), e, m))
    allx = np.concatenate([e[~m] for _, _, e, m in rows if (~m).any()] or [np.zeros((1, emb.shape[1]))])
    mean = allx.mean(0)
    _, _, vt = np.linalg.svd(allx - mean, full_matrices=False)
    for i, (name, start, e, m) in enumerate(rows):
        score = (e - mean) @ vt[0]
        score[m] = np.nan
        ax2.scatter(start / 1e6, np.full(len(start), i), c=score, cmap="coolwarm", s=6, marker="s",
                    linewidths=0)
    ax2.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax2.invert_yaxis()
    ax2.set_xlabel("position (Mbp)")
    ax2.set_title("level 4: PC1 of bin embeddings")
    _save(fig, out)


# -- level 5 ------------------------------------------------------------------------------------
def plot_level5(stores: list[str], out: str) -> None:
    fig, (ax, ax2) = _figure(2)
    path = stores[0]
    ds = _open(path)
    chrom = np.array([str(c) for c in ds["chrom"].values]) if "chrom" in ds else None  # zarr StringDType
    layout = Path(path).with_name("level5_layout.npz")
    if layout.exists():
        with np.load(layout, allow_pickle=False) as z:
            indptr, indices, bs = z["indptr"], z["indices"], int(z["block_size"])
        nb = len(indptr) - 1
        q = np.repeat(np.arange(nb), np.diff(indptr))
        ax.scatter(indices, q, s=max(0.2, 200.0 / max(nb, 1)), marker="s", linewidths=0, c="k")
        ax.set_xlim(-0.5, nb - 0.5)
        ax.set_ylim(nb - 0.5, -0.5)
        ax.set_title(f"level 5 attention pattern: {len(indices)} of {nb * nb} blocks "
                     f"({len(indices) / max(nb * nb, 1):.1%}), block {bs} bins")
        ax.set_xlabel("key block")
        ax.set_ylabel("query block")
    else:
        _empty(ax, "no cached layout (level5_layout.npz)")
    emb = np.asarray(ds["embedding"].values, dtype=np.float64)
    masked = np.asarray(ds["masked"].values, dtype=bool) if "masked" in ds else np.zeros(len(emb), bool)
    scores, ratio = _pca(emb[~masked]) if (~masked).any() else (np.zeros((0, 2)), np.zeros(2))
    pc1 = np.full(len(emb), np.nan)
    pc1[~masked] = scores[:, 0]
    ax2.plot(np.arange(len(emb)), pc1, lw=0.6, color="k")
    if chrom is not None and len(chrom):
        ends = np.flatnonzero(chrom[1:] != chrom[:-1]) + 1
        for e in ends:
            ax2.axvline(e, color="tab:red", lw=0.5, alpha=0.6)
    ax2.set_xlabel("genome-wide bin")
    ax2.set_ylabel(f"PC1 ({ratio[0]:.0%})")
    ax2.set_title(f"level 5 embeddings ({len(emb)} bins; lines: contig ends)")
    _save(fig, out)


# -- variant effects ------------------------------------------------------------------------------
EFFECT_CLASSES = ("stop_gained", "frameshift", "start_lost", "stop_lost", "splice_donor", "splice_acceptor",
                  "inframe_insertion", "inframe_deletion", "missense", "splice_region", "synonymous", "intron",
                  "intergenic")
EFFECT_LEVELS = (("level1_window_change", "L1 window"), ("level2_codon_change", "L2 codon"),
                 ("level3_gene_change", "L3 gene"), ("level4_bin_change", "L4 bin"), ("level5_bin_change", "L5 bin"))


def plot_effects(stores: list[str], out: str) -> None:
    """Level-1 LLR by consequence class; the median change of each level's embedding by class."""
    import pandas as pd

    t = pd.read_parquet(stores[0])
    t["class"] = t["consequence"].str.split("&").str[0]
    classes = [c for c in EFFECT_CLASSES if (t["class"] == c).any()]
    fig, (ax, ax2) = _figure(2, width=6.5)
    llr = [t.loc[(t["class"] == c) & t["llr"].notna(), "llr"].to_numpy() for c in classes]
    keep = [i for i, x in enumerate(llr) if len(x)]
    if keep:
        ax.boxplot([llr[i] for i in keep], orientation="horizontal", showfliers=False)
        ax.set_yticks(np.arange(1, len(keep) + 1), [f"{classes[i]} ({len(llr[i])})" for i in keep], fontsize=7)
        ax.axvline(0, color="tab:red", lw=0.6)
        ax.invert_yaxis()
        ax.set_xlabel("level-1 LLR, log P(alt)/P(ref) (nats)")
        ax.set_title(f"masked-base LLR by consequence ({int(t['llr'].notna().sum())} SNVs)")
    else:
        _empty(ax, "no LLR (no trained level-1 head)")
    med = np.full((len(classes), len(EFFECT_LEVELS)), np.nan)
    for j, (col, _) in enumerate(EFFECT_LEVELS):
        for i, c in enumerate(classes):
            v = t.loc[t["class"] == c, col].dropna()
            if len(v):
                med[i, j] = v.median()
        top = np.nanmax(med[:, j]) if np.isfinite(med[:, j]).any() else np.nan
        if np.isfinite(top) and top > 0:
            med[:, j] /= top
    im = ax2.imshow(med, aspect="auto", cmap=_cmap("viridis"), vmin=0, vmax=1)
    ax2.set_xticks(np.arange(len(EFFECT_LEVELS)), [name for _, name in EFFECT_LEVELS], fontsize=7)
    ax2.set_yticks(np.arange(len(classes)), classes, fontsize=7)
    ax2.set_title("median size of each level's change (per level, / its largest class)")
    fig.colorbar(im, ax=ax2, fraction=0.046)
    _save(fig, out)


# -- held-out Hi-C contacts (level-4 training) -----------------------------------------------------------
def plot_contacts(stores: list[str], out: str) -> None:
    """On the test chromosome with the most held-out pairs: observed (upper triangle) vs predicted (lower)
    log O/E of the held-out pairs, for level 4 and its sequence-only baseline; then predicted vs observed."""
    import pandas as pd

    t = pd.read_parquet(stores[0])
    test = t[t["split"] == "test"] if (t["split"] == "test").any() else t
    fig, axes = _figure(3, width=5.2, height=4.6)
    if not len(test):
        _empty(axes[0], "no held-out pairs")
        _save(fig, out)
        return
    contig = test.groupby("contig").size().idxmax()
    c = test[test["contig"] == contig].drop_duplicates(["bin1", "bin2"])
    n = int(max(c["bin1"].max(), c["bin2"].max())) + 1
    f = _block(n)
    m = -(-n // f)
    lim = float(np.nanpercentile(np.abs(c["observed_log_oe"]), 98)) or 1.0
    for ax, col, name in ((axes[0], "predicted_log_oe", "level 4 (graph attention)"),
                          (axes[1], "sequence_only_log_oe", "sequence only (no graph)")):
        img = np.full((m, m), np.nan)
        a, b = (c["bin1"].to_numpy() // f), (c["bin2"].to_numpy() // f)
        img[a, b] = c["observed_log_oe"].to_numpy()
        if col in c:
            img[b, a] = c[col].to_numpy()
        im = ax.imshow(img, cmap=_cmap("RdBu_r"), vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(f"{contig}: observed (upper) vs {name} (lower)", fontsize=8)
        ax.set_xlabel(f"bin ({int(c['resolution'].iloc[0]) * f // 1000} kb)" if "resolution" in c else "bin")
        fig.colorbar(im, ax=ax, fraction=0.046, label="log O/E of held-out pairs")
    ax = axes[2]
    colors = np.where(test["is_top"], "tab:red", "0.5")
    ax.scatter(test["observed_log_oe"], test["predicted_log_oe"], s=4, c=colors, alpha=0.6)
    ax.set_xlabel("observed log O/E")
    ax.set_ylabel("predicted log O/E (level 4)")
    ax.set_title(f"all test pairs ({len(test)}; red: top edges)", fontsize=8)
    _save(fig, out)


# -- level 6 ------------------------------------------------------------------------------------
def plot_level6(stores: list[str], out: str) -> None:
    """Per-sample embeddings (dim 'sample') on their first two PCs."""
    ds = _open(stores[0])
    names = [n for n in _embedding_vars(ds) if any(str(d).startswith("sample") for d in ds[n].dims)]
    if not names:
        plot_generic(stores, out, "level 6")
        return
    x = np.asarray(ds[names[0]].values, dtype=np.float64)
    if not str(ds[names[0]].dims[0]).startswith("sample"):
        x = x.T
    scores, ratio = _pca(x)
    fig, (ax,) = _figure(1, width=6.5)
    ax.scatter(scores[:, 0], scores[:, 1], s=10)
    ax.set_xlabel(f"PC1 ({ratio[0]:.0%})")
    ax.set_ylabel(f"PC2 ({ratio[1]:.0%})")
    ax.set_title(f"level 6: {names[0]} of {x.shape[0]} samples")
    _save(fig, out)


# -- training (the model.json of each level's checkpoint) ------------------------------------------------------
def _heldout_of(model_json: Path) -> dict | None:
    """The benchmark run beside a checkpoint (heldout.json), if it scored this very checkpoint."""
    import json

    from genoattn.io.store import sha256_file

    bench, weights = model_json.with_name("heldout.json"), model_json.with_name("model.safetensors")
    if not (bench.exists() and weights.exists()):
        return None
    b = json.loads(bench.read_text())
    return b if b.get("model", {}).get("checkpoint_sha256") == sha256_file(weights) else None


CONTACT_METRICS = {"level4": (("spearman", "ρ"), ("auroc_top", "AUC")),
                   "level5": (("spearman", "ρ"), ("auroc_top", "AUC"))}


def _contact_rows(level: str, info: dict) -> list[tuple[str, str, str, str]]:
    """Levels 4-5: the model's held-out test metrics and the baselines of the same job (model.json)."""
    names = CONTACT_METRICS[level]

    def cells(m):
        return tuple(f"{label} {m[key]:.3f}" if isinstance(m.get(key), float) else "" for key, label in names)

    kept = info.get("selected_on_validation") or {}
    label = f"genoattn ({info.get('steps')} steps" + (f", kept step {kept['step']})" if kept else ")")
    rows = [(level, label, *cells(info["metrics"]["test"]))]
    for name, m in info.get("baselines", {}).get("test", {}).items():
        rows.append((level, name.replace("_", " ") + " (baseline)", *cells(m)))
    return rows


def heldout_rows(models: list[str]) -> list[tuple[str, str, str, str]]:
    """(level, model or baseline, test perplexity, accuracy) of each model.json's checkpoint: its own test
    metrics, then the baselines of the benchmark run beside it (:func:`_heldout_of`; for level 1 the
    composition model and the k-mer model of the best k on validation, grid protocol). Levels 4-5 show
    their two contact metrics instead, with the baselines their training job measured."""
    import json

    rows = []
    for path in models:
        info = json.loads(Path(path).read_text())
        level = info.get("level", Path(path).parent.name)
        test = info.get("metrics", {}).get("test", {})
        if level in CONTACT_METRICS and test:
            rows += _contact_rows(level, info)
            continue
        if test:
            rows.append((level, f"genoattn, trained ({info.get('steps')} steps)", f"{test['perplexity']:.4g}",
                         f"{test['accuracy']:.3f}"))
        b = _heldout_of(Path(path))
        if b:
            grid = b.get("protocols", {}).get("grid")
            table = grid["rows"] if grid else b.get("rows", {})
            best = grid.get("best_k_on_validation") if grid else None
            for label, r in table.items():
                if "genoattn" in label or (label.startswith("k-mer") and f"k={best} " not in label):
                    continue
                m = r.get("test", r)
                rows.append((level, label[:48], f"{m['perplexity']:.4g}", f"{m['accuracy']:.3f}"))
    return rows


def plot_training(models: list[str], out: str) -> None:
    """Per trained level: the training loss by step (and the validation perplexity during training); then
    the held-out table (:func:`heldout_rows`)."""
    import json

    infos = [json.loads(Path(p).read_text()) for p in models]
    fig, axes = _figure(len(infos) + 1, width=5.0, height=4.2)
    for ax, path, info in zip(axes, models, infos):
        level = info.get("level", Path(path).parent.name)
        log_rows = info.get("log", [])
        ax.plot([r["step"] for r in log_rows], [r["loss"] for r in log_rows], label="training loss (batches)")
        evals = [e for e in info.get("validation_during_training", []) if "perplexity" in e]
        if evals:
            ax.plot([e["step"] for e in evals], [math.log(e["perplexity"]) for e in evals], "o-",
                    label="validation (ln perplexity)")
        kept = info.get("selected_on_validation")
        if kept:
            ax.axvline(kept["step"], color="0.5", ls=":", label=f"weights kept (best validation {kept['metric']})")
        ax.set_xlabel("step")
        ax.set_ylabel("loss (levels 4-5: squared error + cross-entropy)" if level in CONTACT_METRICS
                      else "cross-entropy (nats)")
        ax.set_title(f"{level}: {info.get('objective', '')}")
        ax.legend(fontsize=8)
    rows = heldout_rows(models)
    tab = axes[-1]
    tab.set_axis_off()
    table = tab.table(cellText=[list(r) for r in rows] or [["", "no trained level", "", ""]],
                      colLabels=["level", "model / baseline", "ppl / ρ", "acc. / AUC"], loc="center",
                      cellLoc="left", colWidths=[0.14, 0.58, 0.14, 0.14])
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    table.scale(1.0, 1.4)
    people = any(r[0] == "level6" for r in rows)  # level 6 holds out individuals, not chromosomes
    contacts = any(r[0] in CONTACT_METRICS for r in rows)
    tab.set_title(("held-out test set (levels 1-5: chromosomes; level 6: people)" if people
                   else "held-out test chromosomes")
                  + ("\n4-5: ρ Spearman of log O/E, AUC of top contacts" if contacts else ""), fontsize=9)
    _save(fig, out)


def plot(level: str, stores: list[str], out: str, hic: str | None = None, weights: str = "") -> None:
    global _WEIGHTS
    _WEIGHTS = weights
    if level == "training":
        plot_training([str(s) for s in stores], out)
        return
    stores = [str(s) for s in stores]
    if not stores:
        fig, (ax,) = _figure(1)
        _empty(ax, f"{level}: no stores")
        _save(fig, out)
        return
    specific = {"level1": plot_level1, "level4": plot_level4, "level5": plot_level5, "level6": plot_level6,
                "effects": plot_effects, "contacts": plot_contacts}
    try:
        if level == "hic":
            plot_hic(stores, out, hic=hic)
        elif level in specific:
            specific[level](stores, out)
        else:
            plot_generic(stores, out, level.replace("level", "level "))
    except KeyError as exc:  # a store without the expected variable: fall back, say so
        log.warning("%s: expected variable missing (%s); generic PCA figure instead", level, exc)
        plot_generic(stores, out, level)


if "snakemake" in globals():
    from genoattn.runtime import setup_logging

    smk = globals()["snakemake"]
    setup_logging(smk.log[0] if len(smk.log) else None)
    plot(smk.params.level, list(smk.input.stores), smk.output[0], hic=smk.params.extra.get("hic"),
         weights=smk.params.extra.get("weights", ""))
