"""Level 3: exon tokens and attention among the exons of each transcript; per-gene pooling.

Input contract
--------------
* The level-2 store of the contig (codon embeddings grouped by exon, the exon table) and the
  level-1 store (per-base embeddings of exon bases), plus the annotation table: the transcript
  model is rebuilt with the same config and its exon ids must equal level 2's (else the level-2
  store is stale and the job stops with the fix).

Model (:class:`ExonAttention`)
------------------------------
1. Pooling tokens of an exon: its codons (level-2 outputs, all three frames; coding exons) and
   its non-CDS bases (level-1 per-base embeddings + strand-specific base composition; UTR parts
   of coding exons, whole non-coding exons), read 5'->3' on the transcript strand, each
   projected to ``dim`` (default 256) with a token-kind embedding.
2. Attention-weighted pooling per exon: ``w = softmax_exon(v . tanh(W x))``, weights sum to one
   over the exon's real tokens; masked (padding) tokens get weight zero and change nothing.
3. + exon type embedding (:data:`genoattn.transcripts.EXON_TYPES`) + position-in-transcript
   embeddings (rank from the 5' end and from the 3' end, clipped at ``max_rank``).
4. Pre-LN transformer block(s), full attention among the exons of each transcript, all
   transcripts of a batch packed in one varlen call.
5. Transcript embedding = attention-weighted pooling of its exons; gene embedding = mean of its
   selected transcripts' embeddings (one transcript per gene unless
   ``levels.annotation.transcripts: all``).

Output contract: results/{reference}/level3/{contig}.zarr
----------------------------------------------------------
Dims ``exon``, ``transcript``, ``gene``, ``feature``.

* ``exon_embedding`` float32 [exon, feature] with the exon coords of level 2 (``exon_id``,
  ``exon_transcript_id``, ``exon_gene_id``, ``exon_start``, ``exon_end``, ``exon_strand``,
  ``exon_rank``, ``exon_cds_start``, ``exon_cds_end``, ``exon_type``); ``exon_n_tokens`` int64
  (codons + UTR bases pooled).
* ``transcript_embedding`` float32 [transcript, feature]; coords ``transcript_id``,
  ``transcript_gene_id``, ``transcript_start``, ``transcript_end``.
* ``gene_embedding`` float32 [gene, feature]; coords ``gene_id``, ``gene_name``,
  ``gene_biotype``, ``gene_strand``, ``gene_start``, ``gene_end`` (0-based half-open; the gene
  row's span widened to its selected transcripts).
* Root attrs: level, contig, dim, model, config, inputs, ``qc`` (counts per problem kind).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genoattn import transcripts as tx
from genoattn.kernels.reference import NEG
from genoattn.levels.codon import (Level1Bases, VarlenBlock, batches_by_tokens, load_model_inputs,
                                   strand_composition, transcripts_with_bases, write_exon_coords)

log = logging.getLogger(__name__)


def attention_pool(x: torch.Tensor, scores: torch.Tensor, seg: torch.Tensor, n: int,
                   mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax-weighted sum of token rows per segment.

    x [N, D], scores [N], seg [N] (segment of each token, 0..n-1), mask [N] (True = real token).
    Returns (pooled [n, D], weights [N]); weights of real tokens sum to one per non-empty
    segment, masked tokens get weight 0 and an empty segment pools to zeros."""
    if mask is None:
        mask = torch.ones_like(seg, dtype=torch.bool)
    s = scores.masked_fill(~mask, NEG)
    seg_max = torch.full((n,), NEG, dtype=s.dtype, device=s.device).scatter_reduce(0, seg, s, "amax")
    e = torch.exp(s - seg_max[seg]) * mask.to(s.dtype)
    denom = torch.zeros(n, dtype=s.dtype, device=s.device).index_add(0, seg, e)
    w = e / denom.clamp(min=torch.finfo(s.dtype).tiny)[seg]
    pooled = torch.zeros(n, x.shape[1], dtype=x.dtype, device=x.device).index_add(0, seg, w[:, None] * x)
    return pooled, w


class ExonAttention(nn.Module):
    def __init__(self, codon_dim: int = 128, base_dim: int = 128, dim: int = 256, heads: int = 16,
                 layers: int = 1, max_rank: int = 64, mlp_ratio: int = 4):
        super().__init__()
        self.max_rank = max_rank
        self.codon_proj = nn.Linear(codon_dim, dim)
        self.base_proj = nn.Linear(base_dim, dim)
        self.letters = nn.Linear(4, dim, bias=False)
        self.kind = nn.Embedding(2, dim)  # 0 codon, 1 base
        self.pool_score = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1))
        self.pool_norm = nn.LayerNorm(dim)
        self.exon_type = nn.Embedding(len(tx.EXON_TYPES), dim)
        self.rank5 = nn.Embedding(max_rank, dim)
        self.rank3 = nn.Embedding(max_rank, dim)
        self.blocks = nn.ModuleList([VarlenBlock(dim, heads, mlp_ratio) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.tx_score = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1))

    def exon_tokens(self, codon_emb, base_emb, base_comp):
        xc = self.codon_proj(codon_emb) + self.kind.weight[0]
        xb = self.base_proj(base_emb) + self.letters(base_comp) + self.kind.weight[1]
        return torch.cat([xc, xb], 0)

    def pool_exons(self, codon_emb, codon_seg, base_emb, base_comp, base_seg, n_exons, mask=None):
        x = self.exon_tokens(codon_emb, base_emb, base_comp)
        seg = torch.cat([codon_seg, base_seg])
        pooled, w = attention_pool(x, self.pool_score(x).squeeze(-1), seg, n_exons, mask)
        return pooled, w

    def forward(self, codon_emb, codon_seg, base_emb, base_comp, base_seg, exon_type, rank5, rank3, cu_seqlens,
                mask=None, backend=None):
        """Returns (exon embeddings [E, dim], transcript embeddings [S, dim]).

        codon_seg / base_seg: exon index (0..E-1) of each codon / base token; cu_seqlens: exon
        offsets of the S transcripts (exons of a transcript contiguous, 5'->3')."""
        E = exon_type.shape[0]
        pooled, _ = self.pool_exons(codon_emb, codon_seg, base_emb, base_comp, base_seg, E, mask)
        h = (self.pool_norm(pooled) + self.exon_type(exon_type) + self.rank5(rank5.clamp(max=self.max_rank - 1))
             + self.rank3(rank3.clamp(max=self.max_rank - 1)))
        for block in self.blocks:
            h = block(h, cu_seqlens, backend=backend)
        h = self.norm(h)
        S = cu_seqlens.shape[0] - 1
        tseg = torch.repeat_interleave(torch.arange(S, device=h.device), cu_seqlens[1:] - cu_seqlens[:-1])
        t_emb, _ = attention_pool(h, self.tx_score(h).squeeze(-1), tseg, S)
        return h, t_emb


class Level2Codons:
    def __init__(self, path):
        from genoattn.io.store import open_group

        self.path = str(path)
        g = open_group(path)
        self.attrs = dict(g.attrs)
        self.exon_id = np.array([str(x) for x in g["exon_id"][:]], dtype=object)
        self.exon_offset = np.asarray(g["exon_codon_offset"][:], dtype=np.int64)
        self._emb = g["codon_embedding"]
        self.dim = int(self._emb.shape[1])

    def embeddings(self, a: int, b: int) -> np.ndarray:
        return np.asarray(self._emb[a:b], dtype=np.float32)


def exon_inputs(exons: tx.ExonTable, codons: Level2Codons, bases: Level1Bases, t_range, device="cpu"):
    """Tensors for the transcripts [ta, tb) (exons contiguous)."""
    ta, tb = t_range
    ea, eb = int(exons.transcript_offset[ta]), int(exons.transcript_offset[tb])
    ca, cb = int(codons.exon_offset[ea]), int(codons.exon_offset[eb])
    codon_emb = codons.embeddings(ca, cb)
    codon_seg = np.repeat(np.arange(eb - ea), np.diff(codons.exon_offset[ea:eb + 1]))
    pos, seg = [], []
    for i in range(ea, eb):
        p = tx.utr_positions(exons, i)
        pos.append(p)
        seg.append(np.full(len(p), i - ea))
    pos = np.concatenate(pos) if pos else np.zeros(0, np.int64)
    seg = np.concatenate(seg) if seg else np.zeros(0, np.int64)
    idx, found = bases.index(pos)
    if not found.all():
        raise ValueError(f"exon bases missing from the level-1 store {bases.path}")
    minus = exons.strand[ea:eb][seg] == "-"
    comp = strand_composition(bases.token[idx], minus)
    rank5 = exons.rank[ea:eb] - 1
    n_in_tx = np.diff(exons.transcript_offset)[exons.transcript_index[ea:eb]]
    rank3 = n_in_tx - exons.rank[ea:eb]
    t = lambda a, dt=None: torch.as_tensor(np.ascontiguousarray(a), dtype=dt, device=device)
    return dict(codon_emb=t(codon_emb, torch.float32), codon_seg=t(codon_seg, torch.int64),
                base_emb=t(bases.embeddings(idx), torch.float32), base_comp=t(comp, torch.float32),
                base_seg=t(seg, torch.int64), exon_type=t(exons.exon_type[ea:eb], torch.int64),
                rank5=t(rank5, torch.int64), rank3=t(rank3, torch.int64),
                cu_seqlens=t(exons.transcript_offset[ta:tb + 1] - ea, torch.int64))


def run(annotation, level1: str, level2: str, output: str, contig: str, config: dict, inputs=(), device=None) -> dict:
    """Compute level 3 for one contig and write ``output`` atomically. Returns the QC counts."""
    from genoattn.io.store import atomic_store, input_checksums, mark_coordinates
    from genoattn.kernels.dispatch import describe
    from genoattn.model import build_module, pick_device

    levels = config["levels"]
    cfg, ann_cfg = dict(levels["level3"]), dict(levels["annotation"])
    device = torch.device(device) if device else pick_device(config["kernels"]["device"])
    source = str(annotation) if not hasattr(annotation, "columns") else "annotation table"
    if not hasattr(annotation, "columns"):
        from genoattn.io.annotation import read_annotation
        ann_df = read_annotation(annotation)
    else:
        ann_df = annotation
    model = load_model_inputs(ann_df, contig, ann_cfg, source)
    bases = Level1Bases(level1)
    codons = Level2Codons(level2)
    qc = dict(model.qc)
    skipped = dict(model.skipped)
    qc.setdefault("missing_level1_bases", 0)
    transcripts = transcripts_with_bases(model.transcripts, bases, qc, skipped, ann_cfg["on_error"], source)
    exons = tx.exon_table(transcripts)
    if len(exons) != len(codons.exon_id) or list(exons.exon_id) != list(codons.exon_id):
        raise ValueError(f"level-2 store {level2} lists other exons than the annotation {source} with the current "
                         f"levels.annotation settings gives (stale level-2 store?). Fix: rerun level 2 for {contig}.")
    genes = tx.gene_table(ann_df, transcripts)
    dim, heads = int(cfg["dim"]), int(cfg["heads"])
    module, identity = build_module(
        lambda: ExonAttention(codons.dim, bases.dim, dim, heads, int(cfg["layers"]), int(cfg["max_rank"])),
        "level3", cfg["checkpoint"], int(cfg["seed"]))
    module.to(device)
    n_codons = np.diff(codons.exon_offset)
    n_bases = np.where(exons.cds_start >= 0, (exons.end - exons.start) - (exons.cds_end - exons.cds_start),
                       exons.end - exons.start)
    n_tokens = n_codons + n_bases
    per_tx = np.add.reduceat(n_tokens, exons.transcript_offset[:-1]) if len(transcripts) else np.zeros(0, np.int64)
    qc.update(transcripts=len(transcripts), exons=len(exons), genes=len(genes))
    exon_emb = np.zeros((len(exons), dim), np.float32)
    tx_emb = np.zeros((len(transcripts), dim), np.float32)
    budget = int(cfg["tokens_per_call"])
    with torch.no_grad():
        for ta, tb in batches_by_tokens(per_tx, budget):
            ea, eb = int(exons.transcript_offset[ta]), int(exons.transcript_offset[tb])
            h, t_emb = module(**exon_inputs(exons, codons, bases, (ta, tb), device))
            exon_emb[ea:eb] = h.float().cpu().numpy()
            tx_emb[ta:tb] = t_emb.float().cpu().numpy()
    gene_key = {(g, c): i for i, (g, c) in enumerate(zip(genes["gene_id"], genes["contig"]))}
    t_gene = np.array([gene_key[(t.gene_id, t.contig)] for t in transcripts], dtype=np.int64)
    gene_emb = np.zeros((len(genes), dim), np.float32)
    np.add.at(gene_emb, t_gene, tx_emb)
    gene_emb /= np.maximum(np.bincount(t_gene, minlength=len(genes)), 1)[:, None]
    attrs = {"level": "level3", "contig": contig, "dim": dim, "model": identity, "kernels": describe(device),
             "config": {"level3": cfg, "annotation": ann_cfg, "level2_dim": codons.dim, "level1_dim": bases.dim},
             "inputs": input_checksums([annotation if isinstance(annotation, (str, Path)) else None, *inputs]),
             "qc": qc, "skipped_transcripts": dict(list(skipped.items())[:1000])}
    with atomic_store(output, attrs=attrs) as w:
        w.write("exon_embedding", exon_emb, dims=("exon", "feature"))
        write_exon_coords(w, exons)
        w.write("exon_n_tokens", n_tokens.astype(np.int64), dims=("exon",))
        w.write("transcript_embedding", tx_emb, dims=("transcript", "feature"))
        w.write("transcript_id", np.array([t.transcript_id for t in transcripts], dtype=object), dims=("transcript",))
        w.write("transcript_gene_id", np.array([t.gene_id for t in transcripts], dtype=object), dims=("transcript",))
        w.write("transcript_start", np.array([t.start for t in transcripts], dtype=np.int64), dims=("transcript",))
        w.write("transcript_end", np.array([t.end for t in transcripts], dtype=np.int64), dims=("transcript",))
        w.write("gene_embedding", gene_emb, dims=("gene", "feature"))
        for col in ("gene_id", "gene_name", "gene_biotype", "gene_strand"):
            w.write(col, genes[col].astype(str).to_numpy(dtype=object), dims=("gene",))
        w.write("gene_start", genes["gene_start"].to_numpy(np.int64), dims=("gene",))
        w.write("gene_end", genes["gene_end"].to_numpy(np.int64), dims=("gene",))
        mark_coordinates(w, "exon_n_tokens", "transcript_id", "transcript_gene_id", "transcript_start",
                         "transcript_end", "gene_id", "gene_name", "gene_biotype", "gene_strand", "gene_start",
                         "gene_end")
    log.info("level3 %s: %d transcripts, %d exons, %d genes; qc %s", contig, len(transcripts), len(exons), len(genes),
             {k: v for k, v in qc.items() if v})
    return qc
