"""Level 4, held-out contact prediction: the graph layer learns 3D contacts it was never shown.

Input contract
--------------
* The reference's cooler and FASTA, and for every selected contig its graph store
  ``results/{reference}/hic/{contig}.zarr`` (the answers: edges, top edges, expected), its level-1 store
  (and its level-3 store when level 4 reads genes, ``levels.level4.gene_context``).
* The split of :mod:`genoattn.training.split`: training contigs train; validation and test contigs are
  only scored (the yeast demo: test chrXI, chrXIII, chrXV).

Objective
---------
On every contig a share ``held_out_edges`` of the graph edges, plus one distance-matched non-top pair per
held-out top edge, is hidden (:mod:`genoattn.hic.held_out`: left out of the balancing, the graph, its
expected, top threshold and insulation). Level 4 runs on what is left; a pair head reads the two bins'
embeddings and two features of the pair every model here gets (log10 distance, the visible expected at
that distance) and predicts the hidden pair's log observed/expected (squared error) and whether it is a
top edge (binary cross-entropy). Training contigs get ``masks`` independent held-out sets (a pair hidden
in one is visible in another); validation and test contigs ``heldout_masks`` (each scored on its own
visible graph, their pairs pooled), seeded.

The weights kept are those of the best validation top-edge AUROC (scored every ``eval_every`` steps):
with a few thousand training pairs both models can memorise their training pairs.

Metrics (held-out contigs, model.json)
-------------------------------------
* ``spearman``: stratum-adjusted Spearman of predicted vs observed log O/E over all hidden pairs (per
  distance stratum, strata = powers of two of the distance in bins, weighted by pairs, as HiCRep's SCC
  weighs strata);
* ``auroc_top``: held-out top edges against their distance-matched negatives;
* baselines on exactly those pairs, same run: ``distance`` (the visible expected at the pair's distance:
  AUROC 0.5 by construction against distance-matched negatives; within a stratum it still orders pairs
  by distance), ``neighbours`` (mean visible log O/E of the 8
  pixels around the pair: what a user would fill a missing pixel with; it reads pixels the graph does
  not hold) and ``sequence_only`` (the same head on level-1/level-3 bin features without the graph,
  trained the same way in the same job: ``sequence_only/model.json``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PAIR_FEATURES = ("log10_distance", "log1p_visible_expected")
QUICK_GRAPHS = 3


class PairHead(nn.Module):
    """Predicts a bin pair's log O/E and top-edge logit from the two bin embeddings.

    Shapes::

        h              [N, dim]   bin embeddings of one contig
        i, j           [P]        the pairs (i < j)
        pair_features  [P, 2]     PAIR_FEATURES
        returns        [P, 2]     (log O/E, top-edge logit)
    """

    def __init__(self, dim: int, n_pair_features: int, seed: int, hidden: int = 128):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.norm = nn.LayerNorm(dim)
            self.mlp = nn.Sequential(nn.Linear(3 * dim + n_pair_features, hidden), nn.GELU(),
                                     nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 2))

    def forward(self, h, i, j, pair_features):
        a, b = self.norm(h[i]), self.norm(h[j])
        return self.mlp(torch.cat([a * b, (a - b).abs(), a + b, pair_features], -1))


class SequenceOnlyBins(nn.Module):
    """The sequence-only baseline: level 4's node input (level-1 windows, level-3 genes) through an MLP
    block, without the graph, its edges or the Hi-C-derived TAD features. Called like RegulatoryGAT."""

    def __init__(self, in_dim: int, dim: int, gene_dim: int = 0, mlp_ratio: int = 2):
        super().__init__()
        self.dim = dim
        self.node_proj = nn.Linear(in_dim, dim)
        self.gene_proj = nn.Linear(gene_dim, dim, bias=False) if gene_dim else None
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, window_features, indptr=None, indices=None, edge_raw=None, gene_features=None,
                has_gene=None, bin_features=None, backend=None):
        x = self.node_proj(window_features)
        if self.gene_proj is not None and gene_features is not None:
            x = x + self.gene_proj(gene_features) * has_gene[:, None].to(x.dtype)
        return self.norm(x + self.mlp(x))


# -- metrics ---------------------------------------------------------------------------------------------
def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count half); NaN without both classes."""
    from scipy.stats import rankdata

    labels = np.asarray(labels, bool)
    npos, nneg = int(labels.sum()), int((~labels).sum())
    if not npos or not nneg:
        return float("nan")
    r = rankdata(scores)
    return float((r[labels].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def stratum_adjusted_spearman(pred, obs, distance, min_pairs: int = 10) -> tuple[float, int]:
    """Spearman per distance stratum (floor(log2 distance in bins)), weighted by pairs; a prediction
    constant within a stratum has correlation 0 there. Returns (rho, strata used)."""
    from scipy.stats import spearmanr

    pred, obs = np.asarray(pred, np.float64), np.asarray(obs, np.float64)
    stratum = np.floor(np.log2(np.maximum(np.asarray(distance), 1))).astype(int)
    total, weight, used = 0.0, 0, 0
    for s in np.unique(stratum):
        sel = stratum == s
        if sel.sum() < min_pairs or np.ptp(obs[sel]) == 0:
            continue
        rho = 0.0 if np.ptp(pred[sel]) == 0 else float(spearmanr(pred[sel], obs[sel])[0])
        total += rho * sel.sum()
        weight += int(sel.sum())
        used += 1
    return (total / weight if weight else float("nan")), used


def contact_metrics(pred_oe, top_score, g: dict) -> dict:
    """The held-out metrics of predictions over the pairs of ``g`` (concatenated graphs of a split)."""
    rho, strata = stratum_adjusted_spearman(pred_oe, g["log_oe"], g["distance"])
    sel = g["auroc_set"]
    return {"spearman": round(rho, 4), "auroc_top": round(auroc(top_score[sel], g["is_top"][sel]), 4),
            "rmse_log_oe": round(float(np.sqrt(np.mean((np.asarray(pred_oe) - g["log_oe"]) ** 2))), 4),
            "strata": strata}


# -- one contig with one held-out set ---------------------------------------------------------------------
@dataclass
class ContactGraph:
    contig: str
    tensors: dict          # level 4's inputs (numpy), built from the visible graph only
    pairs: object          # genoattn.hic.held_out.HeldOutPairs
    pair_features: np.ndarray
    neighbours: np.ndarray  # the neighbour baseline's log O/E per pair


def neighbour_log_oe(contacts, pairs, weights, expected, pc) -> np.ndarray:
    """Mean visible log O/E of the (up to) 8 pixels around each pair: hidden, masked and diagonal ones left out."""
    n, masked = contacts.n, ~np.isfinite(weights)
    total, count = np.zeros(len(pairs.i)), np.zeros(len(pairs.i))
    for a in (-1, 0, 1):
        for b in (-1, 0, 1):
            if a == b == 0:
                continue
            i, j = pairs.i + a, pairs.j + b
            ok = (i >= 0) & (j < n) & (j - i >= 1)
            i, j = np.where(ok, i, 0), np.where(ok, j, 1)
            ok &= ~masked[i] & ~masked[j]
            hidden = np.isin(i * n + j, pairs.keys)
            ok &= ~hidden
            v = contacts.log_oe(i, j, weights=weights, expected=expected, pc=pc)
            total += np.where(ok, v, 0.0)
            count += ok
    return np.where(count > 0, total / np.maximum(count, 1), 0.0).astype(np.float32)


def prepare_graph(contacts, pairs, level1_path, level3_path, l4cfg: dict) -> ContactGraph:
    """Level 4's inputs for one contig with ``pairs`` hidden (see :mod:`genoattn.hic.held_out`)."""
    from genoattn.hic.held_out import graph_arrays
    from genoattn.levels.regulatory import drop_masked_edges, load_bins_and_features

    g, w = contacts.visible(pairs)
    data = load_bins_and_features(graph_arrays(contacts, g, w), level1_path, level3_path, l4cfg["gene_context"],
                                  l4cfg["tad_features"])
    masked = np.asarray(data["bins"]["masked"] | ~data["covered"], bool)
    indptr, indices, kept = drop_masked_edges(data["indptr"], data["indices"], masked)
    tensors = {"window_features": data["window_features"], "indptr": indptr, "indices": indices,
               "edge_raw": data["edge_raw"][kept], "gene_features": data["gene_features"],
               "has_gene": data["has_gene"], "bin_features": data["bin_features"], "masked": masked,
               "level1_dim": data["level1_dim"], "gene_dim": data["gene_dim"],
               "n_edge_features": data["edge_raw"].shape[1],
               "n_bin_features": 0 if data["bin_features"] is None else data["bin_features"].shape[1]}
    d = pairs.j - pairs.i
    st = g["stats"]
    pf = np.stack([np.log10(d * float(contacts.src.resolution) + 1.0),
                   np.log1p(g["expected"][d] / st["balanced_scale"])], axis=1).astype(np.float32)
    nb = neighbour_log_oe(contacts, pairs, w, g["expected"], st["pseudocount_balanced"])
    return ContactGraph(contacts.contig, tensors, pairs, pf, nb)


class HeldOutContacts:
    """The level-4 objective (see the module docstring); ``module`` a RegulatoryGAT or SequenceOnlyBins."""

    level = "level4"
    name = "held-out contact prediction"
    select_on = ("auroc_top", True)  # weights chosen on validation (genoattn.training.loop)

    def __init__(self, module, graphs: dict[str, list[ContactGraph]], cfg: dict, split: dict, backend=None,
                 device: torch.device | None = None, label: str = "graph attention"):
        self.module, self.graphs, self.cfg, self.split, self.backend = module, graphs, cfg, split, backend
        self.device = device or torch.device("cpu")
        self.label = label
        self.head = PairHead(module.dim, len(PAIR_FEATURES), cfg["seed"])
        if not graphs.get("train") or not sum(len(g.pairs.i) for g in graphs["train"]):
            raise ValueError("level-4 training: no held-out pair on the training contigs (no Hi-C edge between "
                             "unmasked bins?); check references.<name>.hic and held_out")

    def _t(self, a, dtype=None):
        t = torch.from_numpy(np.ascontiguousarray(a)).to(self.device)
        return t if dtype is None else t.to(dtype)

    def forward(self, module, head, cg: ContactGraph):
        t = cg.tensors
        h = module(self._t(t["window_features"]), self._t(t["indptr"]), self._t(t["indices"]),
                   self._t(t["edge_raw"]), None if t["gene_features"] is None else self._t(t["gene_features"]),
                   None if t["has_gene"] is None else self._t(t["has_gene"]),
                   None if t["bin_features"] is None else self._t(t["bin_features"]), backend=self.backend)
        return head(h.float(), self._t(cg.pairs.i), self._t(cg.pairs.j), self._t(cg.pair_features))

    def batch(self, rng, size):
        train = self.graphs["train"]
        return {"graphs": [train[int(k)] for k in rng.choice(len(train), size=min(size, len(train)), replace=False)]}

    def loss(self, module, head, batch, checkpoint_blocks=False):
        total, hits, n = 0.0, 0, 0
        for cg in batch["graphs"]:
            if not len(cg.pairs.i):
                continue
            out = self.forward(module, head, cg)
            target = self._t(cg.pairs.log_oe)
            top = self._t(cg.pairs.is_top, torch.float32)
            total = total + F.mse_loss(out[:, 0], target, reduction="sum") \
                + F.binary_cross_entropy_with_logits(out[:, 1], top, reduction="sum")
            hits += int(((out[:, 1] > 0).float() == top).sum())
            n += len(cg.pairs.i)
        return total / max(n, 1), {"accuracy": hits / max(n, 1), "tokens": n}

    @staticmethod
    def gather(graphs: list[ContactGraph]) -> dict:
        p = [g.pairs for g in graphs]
        return {"log_oe": np.concatenate([x.log_oe for x in p]), "is_top": np.concatenate([x.is_top for x in p]),
                "auroc_set": np.concatenate([x.auroc_set for x in p]),
                "distance": np.concatenate([x.j - x.i for x in p]),
                "expected": np.concatenate([g.pair_features[:, 1] for g in graphs]),
                "neighbours": np.concatenate([g.neighbours for g in graphs])}

    @torch.no_grad()
    def predict(self, module, head, graphs: list[ContactGraph]) -> np.ndarray:
        was = module.training
        module.eval()
        head.eval()
        outs = [self.forward(module, head, g).float().cpu().numpy() if len(g.pairs.i) else np.zeros((0, 2), np.float32)
                for g in graphs]
        module.train(was)
        head.train(was)
        return np.concatenate(outs) if outs else np.zeros((0, 2), np.float32)

    def evaluate(self, module, head, split, quick=False):
        graphs = self.graphs.get(split) or []
        if quick:
            graphs = graphs[:QUICK_GRAPHS]
        if not graphs:
            return {}
        out = self.predict(module, head, graphs)
        g = self.gather(graphs)
        return {**contact_metrics(out[:, 0], out[:, 1], g), "pairs": int(len(g["log_oe"])),
                "top_edges": int((g["is_top"] & g["auroc_set"]).sum()),
                "negatives": int((g["auroc_set"] & ~g["is_top"]).sum()), "quick": bool(quick)}

    def baselines(self, split: str) -> dict:
        """The distance and neighbour baselines on the held-out pairs of ``split`` (no training)."""
        graphs = self.graphs.get(split) or []
        if not graphs:
            return {}
        g = self.gather(graphs)
        return {"distance": contact_metrics(g["expected"], g["expected"], g),
                "neighbours": contact_metrics(g["neighbours"], g["neighbours"], g)}

    def prediction_table(self, module, head, splits=("validation", "test")):
        """One row per held-out pair of ``splits``: observed and predicted log O/E, baselines."""
        import pandas as pd

        rows = []
        for split in splits:
            graphs = self.graphs.get(split) or []
            if not graphs:
                continue
            out = self.predict(module, head, graphs)
            at = 0
            for cg in graphs:
                k = len(cg.pairs.i)
                rows.append(pd.DataFrame({
                    "split": split, "contig": cg.contig, "bin1": cg.pairs.i, "bin2": cg.pairs.j,
                    "distance_bins": cg.pairs.j - cg.pairs.i, "observed_log_oe": cg.pairs.log_oe,
                    "is_top": cg.pairs.is_top, "held_out_edge": cg.pairs.is_edge,
                    "predicted_log_oe": out[at:at + k, 0], "predicted_top_logit": out[at:at + k, 1],
                    "neighbours_log_oe": cg.neighbours, "visible_expected": cg.pair_features[:, 1]}))
                at += k
        return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()

    def describe(self):
        return {"split": self.split, "model": self.label,
                "heldout_protocol": f"{self.cfg['held_out_edges']:.0%} of each contig's graph edges hidden "
                                    "(+ one distance-matched non-top pair per hidden top edge), removed from the "
                                    "balancing, graph, expected and insulation the model sees",
                "pairs": {k: int(sum(len(g.pairs.i) for g in v)) for k, v in self.graphs.items()},
                "graphs": {k: len(v) for k, v in self.graphs.items()}}


def build_graphs(contacts_of, split: dict, level1: dict, level3: dict, l4cfg: dict, cfg: dict,
                 log=None) -> dict[str, list[ContactGraph]]:
    """ContactGraphs of every split: ``masks`` held-out sets per training contig, ``heldout_masks`` per
    held-out contig (seeded by ``training.level4.seed``, the contig's name and the mask). ``contacts_of(contig)``
    gives a contig's ContigContacts (None: no graph); its pixels are dropped once its graphs are built, so
    memory holds one contig's pixels at a time."""
    out = {}
    for part in ("train", "validation", "test"):
        out[part] = []
        for c in split[part]:
            contacts = contacts_of(c)
            if contacts is None:
                continue
            k = cfg["masks"] if part == "train" else cfg["heldout_masks"]
            for m in range(k):
                rng = np.random.default_rng([cfg["seed"], sum(map(ord, c)), m, {"train": 0, "validation": 1,
                                                                                  "test": 2}[part]])
                pairs = contacts.held_out(cfg["held_out_edges"], rng)
                out[part].append(prepare_graph(contacts, pairs, level1[c], level3.get(c), l4cfg))
                if log is not None:
                    log.info("level4 training: %s %s mask %d: %d held-out pairs (%d top edges)", part, c, m,
                             len(pairs.i), int((pairs.is_top & pairs.is_edge).sum()))
            del contacts
    return out


def train_job(ref: dict, hic_cfg: dict, l4cfg: dict, cfg: dict, kernels_cfg: dict, split: dict,
              graphs_paths: dict, level1: dict, level3: dict, out_dir, device, identity: dict, loop_opts) -> dict:
    """The ``train_level4`` job: the graph-attention model and its sequence-only baseline, trained the same
    way on the same held-out sets; model.json gains the baselines of both held-out splits and
    ``heldout_pairs.parquet`` every held-out pair's observed and predicted values."""
    import json
    import logging
    import os
    from pathlib import Path

    from genoattn.hic import graph_params, open_reference_hic
    from genoattn.hic.held_out import ContigContacts
    from genoattn.io.store import open_group
    from genoattn.levels.regulatory import RegulatoryGAT
    from genoattn.model import build_module
    from genoattn.training.loop import train_or_reuse

    log = logging.getLogger("genoattn.training")
    contigs = [c for part in ("train", "validation", "test") for c in split[part] if c in graphs_paths]
    src, _ = open_reference_hic(ref, contigs, hic_cfg)
    params = graph_params(hic_cfg)
    graphs = build_graphs(lambda c: ContigContacts(src, c, open_group(graphs_paths[c]), params) if c in graphs_paths
                          else None, split, level1, level3, l4cfg, cfg, log)
    t = graphs["train"][0].tensors
    out = Path(out_dir)
    results = {}
    for label, sub in (("sequence only", out / "sequence_only"), ("graph attention", out)):
        if label == "graph attention":
            factory = lambda: RegulatoryGAT(t["level1_dim"], t["n_edge_features"], dim=l4cfg["dim"],  # noqa: E731
                                            heads=l4cfg["heads"], edge_dim=l4cfg["edge_dim"],
                                            negative_slope=l4cfg["negative_slope"], gene_dim=t["gene_dim"],
                                            n_bin_features=t["n_bin_features"])
        else:
            factory = lambda: SequenceOnlyBins(t["level1_dim"], l4cfg["dim"], t["gene_dim"])  # noqa: E731
        module, _ = build_module(factory, "level4", None, l4cfg["seed"])
        objective = HeldOutContacts(module, graphs, cfg, split, kernels_cfg.get("backend"), device, label)
        results[label] = (train_or_reuse(objective, loop_opts, sub, device, {**identity, "model": label}), objective)
    result, objective = results["graph attention"]
    if not result:  # not rank 0
        return {}
    seq_result, seq_objective = results["sequence only"]
    result["baselines"] = {split_name: {**objective.baselines(split_name),
                                        "sequence_only": seq_result["metrics"][split_name]}
                           for split_name in ("validation", "test") if graphs.get(split_name)}
    table = objective.prediction_table(objective.module, objective.head)
    seq_table = seq_objective.prediction_table(seq_objective.module, seq_objective.head)
    if len(table):
        table["sequence_only_log_oe"] = seq_table["predicted_log_oe"].to_numpy()
        table["sequence_only_top_logit"] = seq_table["predicted_top_logit"].to_numpy()
        table["resolution"] = int(src.resolution)
    tmp = out / f"heldout_pairs.parquet.tmp-{os.getpid()}"
    table.to_parquet(tmp, index=False)
    os.replace(tmp, out / "heldout_pairs.parquet")
    tmp = out / f"model.json.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(result, indent=1, default=str) + "\n")
    os.replace(tmp, out / "model.json")
    for split_name, b in result["baselines"].items():
        log.info("level4 held-out %s: graph attention %s; %s", split_name, result["metrics"][split_name],
                 json.dumps(b))
    return result
