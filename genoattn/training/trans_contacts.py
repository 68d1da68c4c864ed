"""Level 5, held-out trans contacts: genome-wide attention learns which chromosome regions meet in 3D.

Input contract
--------------
* The reference's cooler and FASTA; per contig its graph store (``hic/{contig}.zarr``), level-1 store (and
  level-3 store when level 4 reads genes) and the level-4 module (``levels.level4.checkpoint``, e.g. the
  ``train_level4`` output).
* ``references.<name>.centromeres``: a BED with one centromere interval per contig (0-based half-open).
* The split of :mod:`genoattn.training.split`. A chromosome *pair* is a test pair when either contig is a
  test contig, else a validation pair when either is a validation contig, else a training pair.

What the model sees
-------------------
Level 5 runs on level-4 embeddings computed here from each contig's *cis* pixels only (graph built with
weights balanced on the contig's own pixels, :func:`genoattn.hic.held_out.ice_weights`: the cooler's
genome-wide weights carry every trans pixel's count) and a block layout without Hi-C trans links (local,
random and global blocks only). No trans pixel, of any chromosome pair, reaches the model's input; trans
pixels of training pairs are only its training targets.

Objective
---------
For every chromosome pair, the top ``top_percent`` % of its bin pairs (between unmasked bins, zero
pixels included) by balanced contact are positives, and as many other bin pairs drawn at random are
negatives. A head reads the two bins' level-5 embeddings and the position features of both bins (log10
distance to the centromere and to the nearest telomere in kb, position along the arm) and predicts the
pair's log trans O/E (expected: the chromosome pair's mean balanced contact; squared error) and the
positive label (binary cross-entropy).

The weights kept are those of the best validation AUROC (scored every ``eval_every`` steps).

Metrics: AUROC of positives against the negatives and Spearman of predicted vs observed log O/E over the
held-out pairs; the ``position`` baseline is the same head on the position features alone, trained the
same way in the same job (``position_only/model.json``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genoattn.training.held_out_contacts import auroc

POSITION_FEATURES = ("log10_kb_to_centromere", "log10_kb_to_telomere", "arm_fraction")


def position_features(start, end, length: int, cen_start: int, cen_end: int) -> np.ndarray:
    """[n, 3] POSITION_FEATURES of bins [start, end) on a contig of ``length`` bp."""
    mid = (np.asarray(start, np.float64) + np.asarray(end, np.float64)) / 2
    cen = (cen_start + cen_end) / 2
    d_cen = np.abs(mid - cen)
    arm = np.where(mid < cen, cen, length - cen)
    d_tel = np.minimum(mid, length - mid)
    return np.stack([np.log10(1 + d_cen / 1e3), np.log10(1 + d_tel / 1e3),
                     d_cen / np.maximum(arm, 1)], axis=1).astype(np.float32)


def pair_position_features(fi: torch.Tensor, fj: torch.Tensor) -> torch.Tensor:
    return torch.cat([fi + fj, fi * fj, (fi - fj).abs()], -1)


class TransHead(nn.Module):
    """Predicts a trans bin pair's log O/E and top logit.

    Shapes::

        h            [N, dim]   level-5 embeddings of all bins (dim 0: the position baseline)
        i, j         [P]        bins (genome-wide index) of the pairs
        position     [N, 3]     POSITION_FEATURES of every bin
        returns      [P, 2]
    """

    def __init__(self, dim: int, seed: int, hidden: int = 128):
        super().__init__()
        self.dim = dim
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.norm = nn.LayerNorm(dim) if dim else None
            self.mlp = nn.Sequential(nn.Linear(3 * dim + 3 * len(POSITION_FEATURES), hidden), nn.GELU(),
                                     nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 2))

    def forward(self, h, i, j, position):
        parts = []
        if self.dim:
            a, b = self.norm(h[i]), self.norm(h[j])
            parts = [a * b, (a - b).abs(), a + b]
        parts.append(pair_position_features(position[i], position[j]))
        return self.mlp(torch.cat(parts, -1))


class NoEmbedding(nn.Module):
    """The position baseline's 'level 5': no embedding at all (dim 0)."""

    dim = 0

    def forward(self, x, position=None, layout=None, token_mask=None, backend=None):
        return x.new_zeros(x.shape[0], 0)


@dataclass
class TransPairs:
    """Example bin pairs (genome-wide bin indices) of one split with their targets."""

    i: np.ndarray
    j: np.ndarray
    log_oe: np.ndarray
    is_top: np.ndarray
    chrom_pair: np.ndarray   # index into the list of chromosome pairs


def trans_targets(src, contigs: list[str], bins: list[dict], top_percent: float, pseudocount: float,
                  chunk_pixels: int, rng: np.random.Generator, split_of_contig: dict) -> dict[str, TransPairs]:
    """Positives (top ``top_percent`` % per chromosome pair) and as many random negatives per pair, by split."""
    from genoattn.hic.graph import iter_pixels

    offsets = np.concatenate([[0], np.cumsum([len(b["start"]) for b in bins])]).astype(np.int64)
    n = int(offsets[-1])
    contig_of = np.repeat(np.arange(len(contigs)), np.diff(offsets))
    w = np.concatenate([b["weight"] for b in bins])
    valid = np.isfinite(w)
    # cooler bin id -> genome-wide bin index of this run (-1: not a selected contig)
    cmap = np.full(len(src.weights), -1, np.int64)
    for c, name in enumerate(contigs):
        m = src.contigs[name]
        if m.cooler is not None:
            k = min(len(bins[c]["start"]), m.hi - m.lo)
            cmap[m.lo:m.lo + k] = offsets[c] + np.arange(k)
    keys, vals = [], []
    for b1, b2, cnt in iter_pixels(src.clr, 0, len(src.weights), chunk_pixels):
        i, j = cmap[b1], cmap[b2]
        ok = (i >= 0) & (j >= 0)
        i, j, cnt = i[ok], j[ok], cnt[ok]
        ok = (contig_of[i] != contig_of[j]) & valid[i] & valid[j]
        i, j, cnt = i[ok], j[ok], cnt[ok]
        lo_, hi_ = np.minimum(i, j), np.maximum(i, j)
        keys.append(lo_ * n + hi_)
        vals.append(cnt * w[i] * w[j])
    keys = np.concatenate(keys) if keys else np.zeros(0, np.int64)
    vals = np.concatenate(vals) if vals else np.zeros(0)
    order = np.argsort(keys)
    keys, vals = keys[order], vals[order]
    pc = float(pseudocount) * float(np.median(w[valid])) ** 2
    out = {s: [] for s in ("train", "validation", "test")}
    pairs = [(a, b) for a in range(len(contigs)) for b in range(a + 1, len(contigs))]
    for p, (a, b) in enumerate(pairs):
        ia = offsets[a] + np.flatnonzero(valid[offsets[a]:offsets[a + 1]])
        ib = offsets[b] + np.flatnonzero(valid[offsets[b]:offsets[b + 1]])
        if not len(ia) or not len(ib):
            continue
        lo_k, hi_k = np.searchsorted(keys, [ia.min() * n, (ia.max() + 1) * n])
        kk, vv = keys[lo_k:hi_k], vals[lo_k:hi_k]
        kj = kk % n
        sel = (kj >= offsets[b]) & (kj < offsets[b + 1])
        kk, vv = kk[sel], vv[sel]
        total_pairs = len(ia) * len(ib)
        expected = vv.sum() / total_pairs
        k = int(round(top_percent / 100 * total_pairs))
        if k < 1 or not len(kk):
            continue
        top = np.argsort(-vv, kind="stable")[:min(k, len(kk))]
        pos_keys = np.sort(kk[top])
        # negatives: random valid pairs that are not positives
        ni = rng.choice(ia, size=3 * len(pos_keys))
        nj = rng.choice(ib, size=3 * len(pos_keys))
        nk = np.unique(np.minimum(ni, nj) * n + np.maximum(ni, nj))
        nk = nk[~np.isin(nk, pos_keys)]
        nk = rng.permutation(nk)[:len(pos_keys)]
        allk = np.concatenate([pos_keys, nk])
        pos = np.minimum(np.searchsorted(kk, allk), max(len(kk) - 1, 0))
        bal = np.where(kk[pos] == allk, vv[pos], 0.0) if len(kk) else np.zeros(len(allk))
        s = "test" if "test" in (split_of_contig[contigs[a]], split_of_contig[contigs[b]]) else \
            "validation" if "validation" in (split_of_contig[contigs[a]], split_of_contig[contigs[b]]) else "train"
        out[s].append(TransPairs(allk // n, allk % n,
                                 (np.log(bal + pc) - np.log(expected + pc)).astype(np.float32),
                                 np.r_[np.ones(len(pos_keys), bool), np.zeros(len(nk), bool)],
                                 np.full(len(allk), p)))
    return {s: TransPairs(*(np.concatenate([getattr(t, f) for t in v]) for f in TransPairs.__dataclass_fields__))
            if v else TransPairs(*(np.zeros(0, np.int64),) * 2, np.zeros(0, np.float32), np.zeros(0, bool),
                                 np.zeros(0, np.int64))
            for s, v in out.items()}


class GenomeInput:
    """Level 5's genome-wide input of a training job: level-4 embeddings, bin positions, token mask, layout."""

    def __init__(self, embeddings: list[np.ndarray], masked: list[np.ndarray], positions: list[np.ndarray],
                 contigs: list[str], l5cfg: dict):
        from genoattn.levels.chromosome import SequenceLayout, build_block_layout, layout_options

        self.seq = SequenceLayout(tuple(contigs), tuple(len(e) for e in embeddings), int(l5cfg["block_size"]))
        self.layout, self.layout_stats = build_block_layout(self.seq, trans_block_pairs=None,
                                                            **layout_options(l5cfg))
        self.pos = self.seq.token_positions()
        x = np.zeros((self.seq.n_tokens, embeddings[0].shape[1]), np.float32)
        x[self.pos] = np.concatenate(embeddings)
        mask = np.zeros(self.seq.n_tokens, bool)
        mask[self.pos] = ~np.concatenate(masked)
        position = np.zeros(self.seq.n_tokens, np.int64)
        position[self.pos] = np.concatenate([np.arange(len(e)) for e in embeddings])
        self.x, self.token_mask, self.position = x, mask, position
        self.bin_position = np.concatenate(positions)


class TransContacts:
    """The level-5 objective (see the module docstring); ``module`` ChromosomeAttention or NoEmbedding."""

    level = "level5"
    name = "held-out trans contact prediction"
    select_on = ("auroc_top", True)  # weights chosen on validation pairs (genoattn.training.loop)

    def __init__(self, module, genome: GenomeInput, pairs: dict[str, TransPairs], cfg: dict, split: dict,
                 backend=None, device=None, label: str = "genome attention"):
        self.module, self.genome, self.pairs, self.cfg, self.split = module, genome, pairs, cfg, split
        self.backend, self.device, self.label = backend, device or torch.device("cpu"), label
        self.head = TransHead(module.dim, cfg["seed"])
        if not len(pairs["train"].i):
            raise ValueError("level-5 training: no trans contact between training contigs (one training contig, "
                             "or no trans pixels?); check references.<name>.held_out and hic")
        self._x = torch.from_numpy(genome.x)
        self._mask = torch.from_numpy(genome.token_mask)
        self._position = torch.from_numpy(genome.position)
        self._bins = torch.from_numpy(genome.bin_position)
        self._layout = None

    def embed(self, module):
        d = self.device
        if self._layout is None:
            self._layout = self.genome.layout.to(d)
        h = module(self._x.to(d), self._position.to(d), self._layout, self._mask.to(d), backend=self.backend)
        return h.float()[torch.from_numpy(self.genome.pos).to(d)]

    def _run(self, module, head, i, j):
        d = self.device
        h = self.embed(module)
        return head(h, torch.as_tensor(i, device=d), torch.as_tensor(j, device=d), self._bins.to(d))

    def batch(self, rng, size):
        tp = self.pairs["train"]
        k = rng.choice(len(tp.i), size=min(size, len(tp.i)), replace=False)
        return {"i": tp.i[k], "j": tp.j[k], "log_oe": tp.log_oe[k], "is_top": tp.is_top[k]}

    def loss(self, module, head, batch, checkpoint_blocks=False):
        out = self._run(module, head, batch["i"], batch["j"])
        target = torch.from_numpy(batch["log_oe"]).to(self.device)
        top = torch.from_numpy(batch["is_top"].astype(np.float32)).to(self.device)
        loss = F.mse_loss(out[:, 0], target) + F.binary_cross_entropy_with_logits(out[:, 1], top)
        acc = float(((out[:, 1] > 0).float() == top).float().mean())
        return loss, {"accuracy": acc, "tokens": int(len(target))}

    @torch.no_grad()
    def predict(self, module, head, split: str) -> np.ndarray:
        p = self.pairs.get(split)
        if p is None or not len(p.i):
            return np.zeros((0, 2), np.float32)
        was = module.training
        module.eval()
        head.eval()
        out = self._run(module, head, p.i, p.j).cpu().numpy()
        module.train(was)
        head.train(was)
        return out

    def evaluate(self, module, head, split, quick=False):
        from scipy.stats import spearmanr

        p = self.pairs.get(split)
        if p is None or not len(p.i):
            return {}
        out = self.predict(module, head, split)
        return {"auroc_top": round(auroc(out[:, 1], p.is_top), 4),
                "spearman": round(float(spearmanr(out[:, 0], p.log_oe)[0]), 4),
                "rmse_log_oe": round(float(np.sqrt(np.mean((out[:, 0] - p.log_oe) ** 2))), 4),
                "pairs": int(len(p.i)), "positives": int(p.is_top.sum()),
                "chromosome_pairs": int(len(np.unique(p.chrom_pair))), "quick": bool(quick)}

    def describe(self):
        return {"split": self.split, "model": self.label,
                "heldout_protocol": f"top {self.cfg['top_percent']}% of each chromosome pair's bin pairs vs as many "
                                    "random others; test pairs touch a test contig, validation pairs a validation "
                                    "contig; no trans pixel reaches the model's input",
                "layout": self.genome.layout_stats,
                "pairs": {k: int(len(v.i)) for k, v in self.pairs.items()}}


def level4_embeddings(contacts, level1_path, level3_path, l4cfg: dict, module, device, backend) -> tuple:
    """(embeddings [bins, dim], masked [bins]) of one contig from its cis pixels only (cis-balanced graph)."""
    from genoattn.hic.held_out import graph_arrays
    from genoattn.levels.regulatory import drop_masked_edges, load_bins_and_features

    g, w = contacts.visible(None)
    data = load_bins_and_features(graph_arrays(contacts, g, w), level1_path, level3_path, l4cfg["gene_context"],
                                  l4cfg["tad_features"])
    masked = np.asarray(data["bins"]["masked"] | ~data["covered"], bool)
    indptr, indices, kept = drop_masked_edges(data["indptr"], data["indices"], masked)

    def t(a):
        return None if a is None else torch.from_numpy(np.ascontiguousarray(a)).to(device)

    with torch.inference_mode():
        out = module(t(data["window_features"]), t(indptr), t(indices), t(data["edge_raw"][kept]),
                     t(data["gene_features"]), t(data["has_gene"]), t(data["bin_features"]),
                     backend=backend).float().cpu().numpy()
    out[masked] = 0.0
    return out, masked, data


def train_job(ref: dict, hic_cfg: dict, l4cfg: dict, l5cfg: dict, cfg: dict, kernels_cfg: dict, split: dict,
              graphs_paths: dict, level1: dict, level3: dict, level4_checkpoint, centromeres: str, out_dir, device,
              identity: dict, loop_opts) -> dict:
    """The ``train_level5`` job: level 5 and its position-only baseline on the same pairs; model.json gains
    the baseline's held-out metrics."""
    import json
    import os
    from pathlib import Path

    from genoattn.hic import graph_params, open_reference_hic
    from genoattn.hic.held_out import ContigContacts
    from genoattn.io.bedlike import read_bed
    from genoattn.io.store import open_group
    from genoattn.levels.chromosome import ChromosomeAttention
    from genoattn.levels.regulatory import RegulatoryGAT
    from genoattn.model import build_module
    from genoattn.training.loop import train_or_reuse

    contigs = [c for c in graphs_paths if any(c in split[p] for p in split)]
    src, lengths = open_reference_hic(ref, contigs, hic_cfg)
    params = graph_params(hic_cfg)
    split_of = {c: p for p in split for c in split[p]}
    embeddings, masked, positions, bins = [], [], [], []
    module4 = None
    for c in contigs:
        cc = ContigContacts(src, c, open_group(graphs_paths[c]), params)
        if module4 is None:
            _, _, data = level4_embeddings(cc, level1[c], level3.get(c), l4cfg,
                                           _Probe(), device, kernels_cfg.get("backend"))
            n_bin = 0 if data["bin_features"] is None else data["bin_features"].shape[1]
            module4, _ = build_module(lambda: RegulatoryGAT(
                data["level1_dim"], data["edge_raw"].shape[1], dim=l4cfg["dim"], heads=l4cfg["heads"],
                edge_dim=l4cfg["edge_dim"], negative_slope=l4cfg["negative_slope"], gene_dim=data["gene_dim"],
                n_bin_features=n_bin), "level4", level4_checkpoint, l4cfg["seed"])
            module4 = module4.to(device)
        e, m, _ = level4_embeddings(cc, level1[c], level3.get(c), l4cfg, module4, device, kernels_cfg.get("backend"))
        cen = read_bed(centromeres, c, ref["contig_aliases"], ref["chr_prefix"], int(lengths[c]))
        if len(cen["start"]) != 1:
            raise ValueError(f"{centromeres}: contig {c} has {len(cen['start'])} centromere intervals; level-5 "
                             "training needs exactly one per contig. Fix: list one centromere per contig")
        positions.append(position_features(cc.bins["start"], cc.bins["end"], int(lengths[c]),
                                           int(cen["start"][0]), int(cen["end"][0])))
        embeddings.append(e)
        masked.append(m)
        bins.append(cc.bins)
    genome = GenomeInput(embeddings, masked, positions, contigs, l5cfg)
    pairs = trans_targets(src, contigs, bins, cfg["top_percent"], hic_cfg["pseudocount"], hic_cfg["chunk_pixels"],
                          np.random.default_rng(cfg["seed"]), split_of)
    out = Path(out_dir)
    results = {}
    for label, sub in (("position only", out / "position_only"), ("genome attention", out)):
        if label == "genome attention":
            module, _ = build_module(lambda: ChromosomeAttention(embeddings[0].shape[1], l5cfg["dim"], l5cfg["heads"]),
                                     "level5", None, l5cfg["seed"])
        else:
            module = NoEmbedding()
        objective = TransContacts(module, genome, pairs, cfg, split, kernels_cfg.get("backend"), device, label)
        results[label] = train_or_reuse(objective, loop_opts, sub, device, {**identity, "model": label})
    result = results["genome attention"]
    if not result:
        return {}
    result["baselines"] = {s: {"position": results["position only"]["metrics"][s]}
                           for s in ("validation", "test") if s in results["position only"]["metrics"]}
    tmp = out / f"model.json.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(result, indent=1, default=str) + "\n")
    os.replace(tmp, out / "model.json")
    return result


class _Probe(nn.Module):
    """Stands in for level 4 once, to learn its input sizes before the module is built."""

    def forward(self, window_features, *args, **kwargs):
        return window_features.new_zeros(window_features.shape[0], 1)
