"""Level 4: graph attention (GAT with edge features) over the Hi-C contact graph of one contig.

Input contracts
---------------
* ``results/{reference}/hic/{contig}.zarr`` (dim ``bin``): ``chrom``, ``start``, ``end`` (coords),
  ``masked`` bool, CSR ``indptr`` int64 [bin+1] / ``indices`` int64 [edge] (symmetric, within the
  contig), ``edge_features`` float32 [edge, edge_feature] (attr ``edge_feature_names``).
* ``results/{reference}/level1/{contig}.zarr``: ``window_embedding`` [window, feature],
  ``window_start``, ``window_end``, ``window_skipped``.
* optional ``results/{reference}/level3/{contig}.zarr``: ``gene_embedding`` [gene, feature],
  ``gene_start``, ``gene_end``.

Node features
-------------
``x_bin = W_n · mean_w(level-1 windows overlapping the bin, weighted by the overlap in bp, skipped
windows left out)  +  [gene context] W_g · mean(level-3 genes overlapping the bin)  +  [tad_features]
W_t · (insulation, insulation defined, boundary, boundary strength)`` (the gene term is zero for a
bin without genes).

Layer (PyG ``GATConv`` semantics, ``add_self_loops=False``: the graph already has its self loops)
------------------------------------------------------------------------------------------------
``e_ij = edge_encoder(raw edge features) ∈ R^edge_dim``; ``h = lin(x) ∈ R^{H×D}``;
``α_ij = softmax_j LeakyReLU(<att_src,h_j> + <att_dst,h_i> + <att_edge, lin_edge e_ij>)``;
``out_i = concat_h Σ_j α_ij h_j + bias``. The edge term is folded to ``e_ij @ w_edge`` with
``w_edge[f, h] = Σ_d lin_edge.weight[h·D+d, f] · att_edge[h, d]`` so no ``[E, H, D]`` tensor is
ever built; in inference the edge encoder runs in chunks straight into the ``[E, H]`` logit term
(memory per edge: the raw features plus ``H`` floats). Then a residual
LayerNorm block with an MLP.

Regulatory-element nodes (``nodes``, ``references.*.regulatory_elements`` BED): each element joins
the bin holding its midpoint; element i receives an edge from every element of every bin linked to
its bin (the bin edge's features); windows and genes are pooled over the element, the TAD
features are its bin's.
The store keeps dim ``bin`` (one row per element) and adds coords ``name`` and ``hic_bin``.

Masked bins (NaN balancing weight, or no sequence at all) lose every edge, so they never change
another bin's output; their own embedding is written as zeros and flagged in ``masked``.

Output: ``results/{reference}/level4/{contig}.zarr``: ``embedding`` float32 [bin, feature] with
coords ``chrom``, ``start``, ``end``, ``masked``.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import torch
from torch import nn

from genoattn import kernels
from genoattn.io.bedlike import read_bed  # noqa: F401 (re-exported: genoattn.levels.regulatory.read_bed)

log = logging.getLogger(__name__)


def _strings(a) -> np.ndarray:
    """zarr string arrays (numpy StringDType) as a plain unicode array."""
    return np.asarray(a, dtype=object).astype(str)


# -- pooling intervals into bins --------------------------------------------------------------------
def _expand(owner, lo, hi):
    """For each owner k the run lo[k]..hi[k]-1: returns (owner per item, item)."""
    count = np.maximum(hi - lo, 0)
    rep_owner = np.repeat(owner, count)
    offs = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    return rep_owner, np.repeat(lo, count) + offs


def overlap_matrix(bin_start, bin_end, q_start, q_end, weight: str = "overlap", keep=None):
    """Sparse [n_bins, n_query] matrix of overlaps between row intervals (bins, or regulatory elements
    that may overlap each other) and query intervals (windows, genes).

    ``weight='overlap'`` puts the overlap in bp, ``'count'`` puts 1 for any overlap. Rows are
    normalised to sum 1 (a row without overlap stays empty). ``keep`` (bool [n_query]) drops queries.
    Returns ``(matrix, covered)`` with ``covered`` bool [n_bins].
    """
    import scipy.sparse as sp

    bin_start = np.asarray(bin_start, dtype=np.int64)
    bin_end = np.asarray(bin_end, dtype=np.int64)
    q_start = np.asarray(q_start, dtype=np.int64)
    q_end = np.asarray(q_end, dtype=np.int64)
    nb, nq = len(bin_start), len(q_start)
    qidx = np.arange(nq, dtype=np.int64)
    if keep is not None:
        qidx = qidx[np.asarray(keep, dtype=bool)]
    disjoint = nb < 2 or (np.all(np.diff(bin_start) >= 0) and np.all(bin_start[1:] >= bin_end[:-1]))
    if disjoint:  # uniform bins: a query spans a run of consecutive bins
        lo = np.searchsorted(bin_end, q_start[qidx], side="right")   # first bin ending after q start
        hi = np.searchsorted(bin_start, q_end[qidx], side="left")    # bins starting before q end
        rows_q, rows_b = _expand(qidx, lo, hi)
    else:  # any rows: candidate queries start in (row start - longest query, row end)
        qidx = qidx[np.argsort(q_start[qidx], kind="stable")]
        qs = q_start[qidx]
        longest = int((q_end[qidx] - qs).max()) if len(qidx) else 0
        lo = np.searchsorted(qs, bin_start - longest, side="right")
        hi = np.searchsorted(qs, bin_end, side="left")
        rows_b, pos = _expand(np.arange(nb, dtype=np.int64), lo, hi)
        rows_q = qidx[pos]
    ov = np.minimum(bin_end[rows_b], q_end[rows_q]) - np.maximum(bin_start[rows_b], q_start[rows_q])
    ok = ov > 0
    rows_b, rows_q, ov = rows_b[ok], rows_q[ok], ov[ok]
    w = ov.astype(np.float64) if weight == "overlap" else np.ones(len(ov))
    mat = sp.csr_matrix((w, (rows_b, rows_q)), shape=(nb, nq))
    tot = np.asarray(mat.sum(axis=1)).ravel()
    covered = tot > 0
    inv = np.where(covered, 1.0 / np.where(covered, tot, 1.0), 0.0)
    return sp.diags(inv) @ mat, covered


# -- the module -----------------------------------------------------------------------------------
EDGE_CHUNK = 1 << 18  # edges encoded at a time in inference (bounds the [chunk, edge_dim] temporaries)

class GATEdgeConv(nn.Module):
    """GAT layer with edge features; parameters named as in ``torch_geometric.nn.GATConv`` (so its
    state dict loads into ``GATConv(in, out, heads, edge_dim=edge_dim, add_self_loops=False)``)."""

    def __init__(self, in_dim: int, out_per_head: int, heads: int, edge_dim: int, negative_slope: float = 0.2):
        super().__init__()
        self.heads, self.out_per_head, self.negative_slope = heads, out_per_head, negative_slope
        self.lin = nn.Linear(in_dim, heads * out_per_head, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, out_per_head))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_per_head))
        self.lin_edge = nn.Linear(edge_dim, heads * out_per_head, bias=False)
        self.att_edge = nn.Parameter(torch.empty(1, heads, out_per_head))
        self.bias = nn.Parameter(torch.zeros(heads * out_per_head))
        for p in (self.att_src, self.att_dst, self.att_edge):
            nn.init.xavier_uniform_(p)

    def folded_edge_weight(self) -> torch.Tensor:
        """w_edge [edge_dim, H] with e @ w_edge == (lin_edge(e).view(-1, H, D) * att_edge).sum(-1)."""
        H, D = self.heads, self.out_per_head
        w = self.lin_edge.weight.view(H, D, -1)                    # [H, D, edge_dim]
        return torch.einsum("hdf,hd->fh", w, self.att_edge[0])

    def forward(self, x, indptr, indices, edge_attr=None, backend: str | None = None, edge_bias=None):
        """``edge_attr`` [E, edge_dim] (encoded edge features), or ``edge_bias`` [E, H] = edge_attr @
        folded_edge_weight() computed by the caller (inference in chunks: the [E, edge_dim] tensor
        never exists whole)."""
        H, D = self.heads, self.out_per_head
        h = self.lin(x).view(-1, H, D)
        a_src = (h * self.att_src).sum(-1)
        a_dst = (h * self.att_dst).sum(-1)
        if edge_bias is not None:
            eye = torch.eye(H, dtype=edge_bias.dtype, device=edge_bias.device)
            out = kernels.graph_attention(h, a_src, a_dst, indptr, indices, edge_bias, eye,
                                          negative_slope=self.negative_slope, backend=backend)
        else:
            out = kernels.graph_attention(h, a_src, a_dst, indptr, indices, edge_attr, self.folded_edge_weight(),
                                          negative_slope=self.negative_slope, backend=backend)
        return out.reshape(-1, H * D) + self.bias


class RegulatoryGAT(nn.Module):
    """Node projection (+ gene context), edge encoder, one GAT block with residual/LayerNorm and MLP.

    Shapes::

        window_features [N, in_dim]     pooled level-1 windows per bin
        gene_features   [N, gene_dim]   mean level-3 gene embedding per bin (zeros when none)
        has_gene        [N]             bool
        bin_features    [N, n_bin_features]  TAD features of the graph store (insulation, boundary)
        indptr [N+1], indices [E]       CSR by destination (symmetric graph)
        edge_raw        [E, n_edge_features]
        returns         [N, dim]
    """

    def __init__(self, in_dim: int, n_edge_features: int, dim: int = 256, heads: int = 16, edge_dim: int = 32,
                 negative_slope: float = 0.2, gene_dim: int = 0, n_bin_features: int = 0, mlp_ratio: int = 2):
        super().__init__()
        if dim % heads:
            raise ValueError(f"levels.level4: dim {dim} is not divisible by heads {heads}")
        self.dim, self.heads, self.edge_dim, self.gene_dim = dim, heads, edge_dim, gene_dim
        self.node_proj = nn.Linear(in_dim, dim)
        self.gene_proj = nn.Linear(gene_dim, dim, bias=False) if gene_dim else None
        self.bin_proj = nn.Linear(n_bin_features, dim, bias=False) if n_bin_features else None
        self.edge_encoder = nn.Sequential(nn.Linear(n_edge_features, edge_dim), nn.GELU(),
                                          nn.Linear(edge_dim, edge_dim))
        self.gat = GATEdgeConv(dim, dim // heads, heads, edge_dim, negative_slope)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))
        self.norm2 = nn.LayerNorm(dim)

    def node_input(self, window_features, gene_features=None, has_gene=None, bin_features=None):
        x = self.node_proj(window_features)
        if self.bin_proj is not None and bin_features is not None:
            x = x + self.bin_proj(bin_features)
        if self.gene_proj is not None and gene_features is not None:
            g = self.gene_proj(gene_features)
            if has_gene is not None:
                g = g * has_gene[:, None].to(g.dtype)
            x = x + g
        return x

    def forward(self, window_features, indptr, indices, edge_raw, gene_features=None, has_gene=None,
                bin_features=None, backend: str | None = None):
        x = self.node_input(window_features, gene_features, has_gene, bin_features)
        if torch.is_grad_enabled():
            g = self.gat(x, indptr, indices, self.edge_encoder(edge_raw), backend=backend)
        else:
            g = self.gat(x, indptr, indices, backend=backend, edge_bias=self.edge_bias(edge_raw))
        x = self.norm1(x + g)
        return self.norm2(x + self.mlp(x))

    def edge_bias(self, edge_raw, chunk_edges: int = EDGE_CHUNK):
        """[E, H] attention-logit term of every edge, encoded ``chunk_edges`` edges at a time."""
        w = self.gat.folded_edge_weight()
        out = edge_raw.new_empty(edge_raw.shape[0], self.heads, dtype=w.dtype)
        for s in range(0, edge_raw.shape[0], chunk_edges):
            out[s:s + chunk_edges] = self.edge_encoder(edge_raw[s:s + chunk_edges]) @ w
        return out


# -- graph helpers --------------------------------------------------------------------------------
def drop_masked_edges(indptr: np.ndarray, indices: np.ndarray, masked: np.ndarray):
    """Remove every edge that touches a masked node. Returns (indptr, indices, kept edge ids)."""
    n = len(indptr) - 1
    deg = np.diff(indptr)
    dst = np.repeat(np.arange(n, dtype=np.int64), deg)
    keep = ~(masked[dst] | masked[indices])
    new_deg = np.bincount(dst[keep], minlength=n)
    new_indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(new_deg, out=new_indptr[1:])
    return new_indptr, indices[keep].astype(np.int64), np.nonzero(keep)[0]


def _gene_context_wanted(setting, level3_path) -> bool:
    if setting is True or setting == "true":
        if not level3_path or not os.path.exists(level3_path):
            raise FileNotFoundError(f"levels.level4.gene_context is true but the level-3 store {level3_path} "
                                    "does not exist: run `snakemake level3` first or set gene_context: auto")
        return True
    if setting is False or setting == "false":
        return False
    return bool(level3_path) and os.path.exists(level3_path)


# -- regulatory-element nodes (the BED reader: genoattn.io.bedlike.read_bed) ------------------------
def element_graph(bin_start, bin_end, indptr, indices, el_start, el_end):
    """Lift the bin contact graph onto regulatory elements.

    Each element belongs to the bin holding its midpoint; element ``i`` receives an edge from every
    element of every bin that is a neighbour of its bin (its own bin included, through the bin's self
    loop), carrying that bin edge's features. Returns (node_bin, indptr, indices, bin_edge_id).
    """
    nb, ne = len(bin_start), len(el_start)
    mid = (np.asarray(el_start, dtype=np.int64) + np.asarray(el_end, dtype=np.int64) - 1) // 2
    node_bin = np.clip(np.searchsorted(bin_start, mid, side="right") - 1, 0, max(nb - 1, 0)).astype(np.int64)
    by_bin = np.argsort(node_bin, kind="stable")
    bptr = np.zeros(nb + 1, dtype=np.int64)
    np.cumsum(np.bincount(node_bin, minlength=nb), out=bptr[1:])
    dst1, e1 = _expand(np.arange(ne, dtype=np.int64), indptr[node_bin], indptr[node_bin + 1])
    src_bin = indices[e1]
    pair, pos = _expand(np.arange(len(e1), dtype=np.int64), bptr[src_bin], bptr[src_bin + 1])
    dst, src, edge_id = dst1[pair], by_bin[pos], e1[pair]
    new_indptr = np.zeros(ne + 1, dtype=np.int64)
    np.cumsum(np.bincount(dst, minlength=ne), out=new_indptr[1:])
    return node_bin, new_indptr, src.astype(np.int64), edge_id.astype(np.int64)


TAD_FEATURES = ("insulation", "insulation_defined", "boundary", "boundary_strength")


def tad_features(g) -> np.ndarray | None:
    """[n_bins, 4] from the graph store: insulation (NaN -> 0), whether it is defined, boundary,
    boundary strength. None when the store has no insulation."""
    if "insulation" not in g:
        return None
    ins = np.asarray(g["insulation"][:], dtype=np.float64)
    n = len(ins)
    boundary = np.asarray(g["boundary"][:], dtype=np.float64) if "boundary" in g else np.zeros(n)
    strength = np.asarray(g["boundary_strength"][:], dtype=np.float64) if "boundary_strength" in g else np.zeros(n)
    feats = np.stack([ins, np.isfinite(ins), boundary, strength], axis=1)
    return np.nan_to_num(feats, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def load_bins_and_features(hic_path, level1_path, level3_path=None, gene_context="auto", use_tad=True,
                           elements: dict | None = None):
    """Read the graph store and pool level-1 windows (and level-3 genes) into its bins."""
    from genoattn.hic.held_out import GraphArrays
    from genoattn.io.store import open_group

    g = hic_path if isinstance(hic_path, GraphArrays) else open_group(hic_path)
    for name in ("indptr", "indices", "edge_features", "start", "end"):
        if name not in g:
            raise ValueError(f"Hi-C graph store {hic_path} has no array {name!r}; rebuild it with `snakemake hic`")
    bins = {
        "chrom": _strings(g["chrom"][:]) if "chrom" in g else None,
        "start": np.asarray(g["start"][:], dtype=np.int64),
        "end": np.asarray(g["end"][:], dtype=np.int64),
        "masked": np.asarray(g["masked"][:], dtype=bool) if "masked" in g else None,
    }
    n = len(bins["start"])
    if bins["masked"] is None:
        bins["masked"] = np.zeros(n, dtype=bool)
    if bins["chrom"] is None:
        bins["chrom"] = np.full(n, str(g.attrs.get("contig", "")), dtype=object)
    indptr = np.asarray(g["indptr"][:], dtype=np.int64)
    indices = np.asarray(g["indices"][:], dtype=np.int64)
    edge_raw = np.asarray(g["edge_features"][:], dtype=np.float32)
    if len(indptr) != n + 1 or indptr[-1] != len(indices) or len(edge_raw) != len(indices):
        raise ValueError(f"Hi-C graph store {hic_path}: inconsistent CSR (bins {n}, indptr {len(indptr)}, "
                         f"edges {len(indices)}, edge_features {len(edge_raw)}); rebuild it with `snakemake hic`")
    edge_raw = np.nan_to_num(edge_raw, nan=0.0, posinf=0.0, neginf=0.0)
    hic_attrs = dict(g.attrs)
    bin_features = tad_features(g) if use_tad else None
    feature_names = list(getattr(g["edge_features"], "attrs", {}).get("edge_feature_names",
                                                      hic_attrs.get("edge_feature_names", [])))
    if elements is not None:
        node_bin, indptr, indices, edge_ids = element_graph(bins["start"], bins["end"], indptr, indices,
                                                            elements["start"], elements["end"])
        edge_raw = edge_raw[edge_ids]
        if bin_features is not None:
            bin_features = bin_features[node_bin]
        contig = str(bins["chrom"][0]) if n else str(hic_attrs.get("contig", ""))
        bins = {"chrom": np.full(len(node_bin), contig, dtype=object), "start": elements["start"],
                "end": elements["end"], "masked": bins["masked"][node_bin], "name": elements["name"],
                "bin_index": node_bin}

    l1 = open_group(level1_path)
    emb = np.asarray(l1["window_embedding"][:], dtype=np.float32)
    skipped = np.asarray(l1["window_skipped"][:], dtype=bool) if "window_skipped" in l1 else None
    wmat, covered = overlap_matrix(bins["start"], bins["end"], l1["window_start"][:], l1["window_end"][:],
                                   "overlap", None if skipped is None else ~skipped)
    window_features = np.asarray(wmat @ emb, dtype=np.float32)

    use_genes = _gene_context_wanted(gene_context, level3_path)
    gene_features = has_gene = None
    gene_dim = 0
    if use_genes:
        l3 = open_group(level3_path)
        gemb = np.asarray(l3["gene_embedding"][:], dtype=np.float32)
        gene_dim = gemb.shape[1]
        gmat, has_gene = overlap_matrix(bins["start"], bins["end"], l3["gene_start"][:], l3["gene_end"][:], "count")
        gene_features = np.asarray(gmat @ gemb, dtype=np.float32)
    return {"bins": bins, "indptr": indptr, "indices": indices, "edge_raw": edge_raw, "hic_attrs": hic_attrs,
            "edge_feature_names": feature_names, "window_features": window_features, "covered": covered,
            "window_matrix": wmat, "gene_matrix": gmat if use_genes else None,
            "level1_dim": emb.shape[1], "gene_features": gene_features, "has_gene": has_gene,
            "gene_dim": gene_dim, "use_genes": use_genes, "bin_features": bin_features}


class ContigGraph:
    """Level 4 of one contig, ready to run: the graph, the node features and the module. ``embed`` runs it,
    on the stored node features or on changed ones (variant effects change one bin's window features)."""

    def __init__(self, hic_path, level1_path, cfg: dict, level3_path=None, kernels_cfg: dict | None = None,
                 contig: str | None = None, regulatory_elements=None, contig_policy: dict | None = None):
        from genoattn.io.store import open_group
        from genoattn.model import build_module, pick_device

        nodes = cfg["nodes"]
        if nodes == "regulatory_elements" and not regulatory_elements:
            raise ValueError("levels.level4.nodes is regulatory_elements but the reference has no "
                             "regulatory_elements BED: set references.<name>.regulatory_elements or nodes: auto")
        elements = None
        if regulatory_elements and nodes in ("auto", "regulatory_elements"):
            g = open_group(hic_path)
            name = contig or str(g.attrs.get("contig"))
            if contig_policy is None:
                raise ValueError("level 4 with regulatory elements needs the reference's contig_aliases and chr_prefix "
                                 "(contig_policy) to read the BED's contig names")
            elements = read_bed(regulatory_elements, name, contig_policy["contig_aliases"], contig_policy["chr_prefix"],
                                int(np.asarray(g["end"][-1:])[0]) if g["end"].shape[0] else None)
            log.info("level4 %s: %d regulatory elements from %s", name, len(elements["start"]), regulatory_elements)
        data = load_bins_and_features(hic_path, level1_path, level3_path, cfg["gene_context"], cfg["tad_features"],
                                      elements)
        bins = data["bins"]
        n = len(bins["start"])
        masked = np.asarray(bins["masked"] | ~data["covered"], dtype=bool)
        indptr, indices, kept = drop_masked_edges(data["indptr"], data["indices"], masked)
        edge_raw = data["edge_raw"][kept]
        log.info("level4 %s: %d bins (%d masked), %d edges (%d after dropping masked), gene context: %s",
                 contig or hic_path, n, int(masked.sum()), len(data["indices"]), len(indices), data["use_genes"])

        n_edge_features = data["edge_raw"].shape[1]

        def factory():
            return RegulatoryGAT(data["level1_dim"], n_edge_features, dim=cfg["dim"], heads=cfg["heads"],
                                 edge_dim=cfg["edge_dim"], negative_slope=cfg["negative_slope"],
                                 gene_dim=data["gene_dim"],
                                 n_bin_features=0 if data["bin_features"] is None else data["bin_features"].shape[1])

        module, identity = build_module(factory, "level4", cfg["checkpoint"], cfg["seed"])
        self.device = pick_device(kernels_cfg["device"])
        self.module = module.to(self.device)
        self.identity, self.backend, self.dim = identity, kernels_cfg.get("backend"), int(cfg["dim"])
        self.data, self.elements, self.masked = data, elements, masked
        self.indptr, self.indices, self.edge_raw = indptr, indices, edge_raw

    def _t(self, a):
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    @torch.inference_mode()
    def embed(self, window_features: np.ndarray | None = None, gene_features: np.ndarray | None = None) -> np.ndarray:
        """[bins, dim] embeddings (zeros for masked bins); node features default to the stored ones."""
        d = self.data
        wf = d["window_features"] if window_features is None else window_features
        gf = d["gene_features"] if gene_features is None else gene_features
        if len(wf) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self.module(self._t(wf), self._t(self.indptr), self._t(self.indices), self._t(self.edge_raw),
                          None if gf is None else self._t(gf),
                          None if d["has_gene"] is None else self._t(d["has_gene"]),
                          None if d["bin_features"] is None else self._t(d["bin_features"]),
                          backend=self.backend).float().cpu().numpy()
        out[self.masked] = 0.0
        return out


# -- the rule's entry point -----------------------------------------------------------------------
def run(hic_path, level1_path, output, cfg: dict, level3_path=None, kernels_cfg: dict | None = None,
        inputs=(), contig: str | None = None, regulatory_elements=None, contig_policy: dict | None = None) -> None:
    """Compute level 4 for one contig and write ``output`` atomically.

    ``cfg`` is the validated ``levels.level4`` section; ``inputs`` raw input files to checksum
    (besides the raw files the Hi-C graph store records, which are carried over).
    ``regulatory_elements``: a BED whose intervals on this contig become the nodes instead of the
    uniform bins (used when ``cfg['nodes']`` is ``auto`` or ``regulatory_elements``);
    ``contig_policy``: the reference's ``contig_aliases`` / ``chr_prefix`` for the BED's names.
    """
    from genoattn.io.store import atomic_store, input_checksums, mark_coordinates, open_group
    from genoattn.kernels.dispatch import describe

    graph = ContigGraph(hic_path, level1_path, cfg, level3_path, kernels_cfg, contig, regulatory_elements,
                        contig_policy)
    data, bins, masked, elements = graph.data, graph.data["bins"], graph.masked, graph.elements
    n, indices, device, identity = len(bins["start"]), graph.indices, graph.device, graph.identity
    out = graph.embed()

    n_edges = len(indices)
    attrs = {
        "level": "level4", "contig": contig or data["hic_attrs"].get("contig"),
        "resolution": data["hic_attrs"].get("resolution"), "dim": cfg["dim"], "heads": cfg["heads"],
        "edge_dim": cfg["edge_dim"], "model": identity, "kernels": describe(device),
        "config": {**cfg, "edge_feature_names": data["edge_feature_names"], "level1_dim": data["level1_dim"],
                   "gene_dim": data["gene_dim"]},
        "gene_context": bool(data["use_genes"]),
        "tad_features": [] if data["bin_features"] is None else list(TAD_FEATURES),
        "n_bins": n, "n_masked": int(masked.sum()), "n_edges": int(n_edges),
        "density": float(n_edges / max(n * n, 1)),
        "nodes": "bins" if elements is None else "regulatory_elements",
        "regulatory_elements": None if elements is None else str(regulatory_elements),
        "inputs": {**dict(open_group(hic_path).attrs.get("inputs", {})), **input_checksums(inputs)},
    }
    with atomic_store(output, attrs=attrs) as w:
        w.write("chrom", np.asarray(bins["chrom"]).astype(str), dims=("bin",))
        w.write("start", bins["start"], dims=("bin",))
        w.write("end", bins["end"], dims=("bin",))
        w.write("masked", masked, dims=("bin",))
        coords = ["chrom", "start", "end", "masked"]
        if elements is not None:
            w.write("name", np.asarray(bins["name"]).astype(str), dims=("bin",))
            w.write("hic_bin", bins["bin_index"], dims=("bin",),
                    attrs={"description": "index of the Hi-C bin holding the element's midpoint"})
            coords += ["name", "hic_bin"]
        w.write("embedding", out.astype(np.float32), dims=("bin", "feature"))
        mark_coordinates(w, *coords)
