"""Level 2: codon attention in three reading frames, per coding exon.

Input contract
--------------
* Transcripts from :mod:`genoattn.transcripts` (annotation table -> exons/CDS 5'->3' on the
  transcript strand, checked; bad transcripts counted in QC, skipped or an error).
* Level-1 store ``results/{reference}/level1/{contig}.zarr``: ``exon_base_position`` (sorted
  unique positions), ``exon_base_embedding`` [exon_base, feature], ``exon_base_token``. Per-base
  embeddings are in genomic orientation and strand-symmetric (``reverse_complement``), so a
  minus-strand codon is read as the embeddings of its three positions in descending genomic
  order, and its letters as the complement of the forward tokens.

Model (:class:`CodonAttention`)
-------------------------------
A codon token = ``Linear(concat(e1, e2, e3))`` of its three base embeddings in transcript
order + ``Linear`` of the three strand-specific base compositions (IUPAC codes as fractions of
A/C/G/T) + a frame embedding (0 = annotated frame, 1, 2) + a fixed sinusoidal encoding of the
codon's offset in the spliced CDS; then pre-LN transformer block(s) with attention among the codon
tokens (all three frames) of one exon, q and k rotated by that offset (rotary positions: a codon finds
its neighbours by their distance, wherever it sits in the CDS). All exons go
through :func:`genoattn.kernels.varlen_attention` packed (``cu_seqlens``), in calls of at most
``levels.level2.tokens_per_call`` tokens; an exon longer than ``long_exon_tokens`` gets its own
dense call (the dense CPU path tiles the queries; memory stays bounded).

A codon split by an intron belongs to the exon holding its first base (5' on the transcript);
its token still pools the three spliced bases.

Output contract: results/{reference}/level2/{contig}.zarr
----------------------------------------------------------
Dims ``codon``, ``codon_base`` (3), ``exon``, ``exon_ptr`` (exon + 1), ``feature``.

* ``codon_embedding`` float16 [codon, feature] (``levels.level2.codon_dtype``: float16 default, or float32); coords ``codon_frame`` int8, ``codon_exon``
  int64 (index into ``exon``), ``codon_start`` int64 (genomic position of the codon's first base
  on the transcript strand), ``codon_base_position`` int64 [codon, codon_base] (the three bases,
  transcript order). Codons of an exon are contiguous, ordered by CDS offset (frames interleave).
* ``exon_codon_offset`` int64 [exon_ptr]: codons of exon i are ``exon_codon_offset[i]:[i+1]``.
* ``exon_embedding`` float32 [exon, feature]: mean of the exon's codon outputs (zeros for an
  exon without codons: non-coding exons are listed so level 3 shares the exon table).
* exon coords: ``exon_id`` ("{transcript_id}:exon{rank}"), ``exon_transcript_id``,
  ``exon_gene_id``, ``exon_start``, ``exon_end``, ``exon_strand``, ``exon_rank`` (1-based,
  5'->3'), ``exon_cds_start``/``exon_cds_end`` (-1 without CDS), ``exon_type`` (index into
  :data:`genoattn.transcripts.EXON_TYPES`, names in the attribute ``exon_types``).
* Root attrs: level, contig, dim, model, config (level2 + annotation sections + level-1 dim),
  inputs, ``qc`` (counts per problem kind), ``skipped_transcripts`` (first 1000 ids: problem).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genoattn import alphabet, kernels
from genoattn import transcripts as tx

log = logging.getLogger(__name__)

LONG_EXON_TOKENS = 2048


# ---------------------------------------------------------------------------------------------
# building blocks shared with level 3


def packed_attention(q, k, v, cu_seqlens: torch.Tensor, backend=None, long_tokens: int = LONG_EXON_TOKENS):
    """Attention within each packed sequence. q, k, v [T, H, D]; cu_seqlens [S+1].

    Sequences up to ``long_tokens`` go through one :func:`kernels.varlen_attention` call;
    longer ones each through :func:`kernels.attention` (tiled on CPU), so no n x n matrix of a
    very long sequence is ever materialised by the reference varlen path."""
    lengths = cu_seqlens[1:] - cu_seqlens[:-1]
    long = torch.nonzero(lengths > long_tokens).flatten().tolist()
    if not long:
        return kernels.varlen_attention(q, k, v, cu_seqlens, int(lengths.max()) if len(lengths) else 0,
                                        backend=backend)
    bounds = cu_seqlens.tolist()
    is_long = torch.zeros(q.shape[0], dtype=torch.bool, device=q.device)
    for s in long:
        is_long[bounds[s]:bounds[s + 1]] = True
    short_len = lengths.clone()
    short_len[long] = 0
    short_cu = torch.zeros_like(cu_seqlens)
    short_cu[1:] = torch.cumsum(short_len, 0)
    keep = ~is_long
    parts = torch.zeros_like(q)
    if int(short_cu[-1]):
        out_short = kernels.varlen_attention(q[keep], k[keep], v[keep], short_cu, int(short_len.max()),
                                             backend=backend)
        parts = parts.index_put((torch.nonzero(keep).flatten(),), out_short)
    for s in long:
        a, b = bounds[s], bounds[s + 1]
        o = kernels.attention(q[None, a:b].transpose(1, 2), k[None, a:b].transpose(1, 2),
                              v[None, a:b].transpose(1, 2), backend=backend)[0].transpose(0, 1)
        parts = parts.index_put((torch.arange(a, b, device=q.device),), o)
    return parts


class VarlenBlock(nn.Module):
    """Pre-LN transformer block; attention only inside each packed sequence. With ``rotary``, q and k are
    rotated by each token's integer position (relative positions: a token finds its neighbours wherever
    it sits)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4, rotary: bool = False):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        if rotary and (dim // heads) % 2:
            raise ValueError(f"head dim {dim // heads} must be even for rotary positions")
        self.heads, self.rotary = heads, rotary
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor, cu_seqlens: torch.Tensor, backend=None, positions=None) -> torch.Tensor:
        T, dim = x.shape
        qkv = self.qkv(self.norm1(x)).view(T, 3, self.heads, dim // self.heads)
        q, k = qkv[:, 0], qkv[:, 1]
        if self.rotary:
            from genoattn.levels.nucleotide import rotate

            half = dim // self.heads // 2
            inv = 1.0 / (10000.0 ** (torch.arange(half, dtype=torch.float32, device=x.device) / half))
            angle = positions.to(torch.float32)[:, None, None] * inv  # [T, 1, half]
            q, k = rotate(q, angle.cos(), angle.sin()), rotate(k, angle.cos(), angle.sin())
        o = packed_attention(q, k, qkv[:, 2], cu_seqlens, backend=backend)
        x = x + self.out(o.reshape(T, dim))
        return x + self.mlp(self.norm2(x))


def sinusoid(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Fixed sinusoidal encoding [N, dim] of integer positions."""
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=positions.device) / half)
    ang = positions.to(torch.float32)[:, None] * freq[None]
    out = torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)
    return out if dim % 2 == 0 else torch.nn.functional.pad(out, (0, 1))


def segment_mean(x: torch.Tensor, seg: torch.Tensor, n: int) -> torch.Tensor:
    out = torch.zeros(n, x.shape[1], dtype=x.dtype, device=x.device).index_add(0, seg, x)
    cnt = torch.zeros(n, dtype=x.dtype, device=x.device).index_add(0, seg, torch.ones_like(seg, dtype=x.dtype))
    return out / cnt.clamp(min=1)[:, None]


def strand_composition(tokens: np.ndarray, minus: np.ndarray) -> np.ndarray:
    """Base fractions (A, C, G, T) of tokens read on the transcript strand (complement on '-')."""
    t = np.where(minus, alphabet.COMPLEMENT[tokens], tokens)
    return alphabet.COMPOSITION[t]


class CodonAttention(nn.Module):
    """Codon tokens of three frames -> attention per exon (see the module docstring)."""

    def __init__(self, in_dim: int = 128, dim: int = 128, heads: int = 8, layers: int = 1, mlp_ratio: int = 4):
        super().__init__()
        self.dim = dim
        self.base_proj = nn.Linear(3 * in_dim, dim)
        self.letters = nn.Linear(12, dim, bias=False)
        self.frame = nn.Embedding(3, dim)
        # rotary positions: the codon's first base's offset in the spliced CDS (frames interleave by 1 base)
        self.blocks = nn.ModuleList([VarlenBlock(dim, heads, mlp_ratio, rotary=True) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)

    def embed(self, base_emb, composition, frame, offset):
        """base_emb [C, 3, in_dim], composition [C, 3, 4], frame [C] int, offset [C] int -> [C, dim]."""
        C = base_emb.shape[0]
        return (self.base_proj(base_emb.reshape(C, -1)) + self.letters(composition.reshape(C, 12))
                + self.frame(frame.long()) + sinusoid(offset, self.dim))

    def forward(self, base_emb, composition, frame, offset, cu_seqlens, backend=None, checkpoint_blocks=False):
        x = self.embed(base_emb, composition, frame, offset)
        for block in self.blocks:
            if checkpoint_blocks and torch.is_grad_enabled():  # gradient checkpointing (training option)
                x = torch.utils.checkpoint.checkpoint(block, x, cu_seqlens, backend, offset, use_reentrant=False)
            else:
                x = block(x, cu_seqlens, backend=backend, positions=offset)
        return self.norm(x)


# ---------------------------------------------------------------------------------------------
# the level


class Level1Bases:
    """Per-base embeddings of exon bases from a level-1 store, read by index ranges."""

    def __init__(self, path):
        from genoattn.io.store import open_group

        self.path = str(path)
        g = open_group(path)
        self.attrs = dict(g.attrs)
        self.position = np.asarray(g["exon_base_position"][:], dtype=np.int64)
        self.token = np.asarray(g["exon_base_token"][:], dtype=np.uint8)
        self._emb = g["exon_base_embedding"]
        self.dim = int(self._emb.shape[1])

    def index(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index into exon_base, found mask) of genomic positions."""
        idx = np.searchsorted(self.position, positions)
        idx = np.clip(idx, 0, max(len(self.position) - 1, 0))
        found = (self.position[idx] == positions) if len(self.position) else np.zeros(positions.shape, bool)
        return idx, found

    def embeddings(self, idx: np.ndarray) -> np.ndarray:
        if idx.size == 0:
            return np.zeros(idx.shape + (self.dim,), np.float32)
        lo, hi = int(idx.min()), int(idx.max()) + 1
        block = np.asarray(self._emb[lo:hi], dtype=np.float32)
        return block[idx - lo]


def transcripts_with_bases(transcripts, bases: Level1Bases, qc: dict, skipped: dict, on_error: str, source: str):
    """Drop (or raise on) transcripts whose exon bases are missing from the level-1 store."""
    keep = []
    for t in transcripts:
        pos = tx._spliced_positions(t.exons, t.strand)
        _, found = bases.index(pos)
        if found.all():
            keep.append(t)
            continue
        qc["missing_level1_bases"] = qc.get("missing_level1_bases", 0) + 1
        skipped[t.transcript_id] = "missing_level1_bases"
        msg = (f"{source}: transcript {t.transcript_id}: {int((~found).sum())} exon bases are not in the level-1 "
               f"store {bases.path} (was level 1 made from another annotation?). Fix: rerun level 1 on this annotation.")
        if on_error == "error":
            raise tx.AnnotationModelError(msg)
        log.warning("skipped: %s", msg)
    return keep


def batches_by_tokens(counts: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Split consecutive items with token ``counts`` into [a, b) runs of at most ``budget`` tokens
    (an item larger than the budget makes a run of its own)."""
    out, a, acc = [], 0, 0
    for i, c in enumerate(counts.tolist()):
        if acc and acc + c > budget:
            out.append((a, i))
            a, acc = i, 0
        acc += c
    if len(counts):
        out.append((a, len(counts)))
    return out


def codon_inputs(codons: tx.CodonTable, sel: slice, bases: Level1Bases):
    """Numpy inputs of the codons in ``sel``: base embeddings [C, 3, d], composition [C, 3, 4]."""
    bpos = codons.base_position[sel]
    idx, found = bases.index(bpos.reshape(-1))
    if not found.all():
        raise ValueError(f"codon bases missing from the level-1 store {bases.path}")
    emb = bases.embeddings(idx).reshape(bpos.shape[0], 3, -1)
    minus = np.repeat(codons.strand_minus[sel], 3)
    comp = strand_composition(bases.token[idx], minus).reshape(bpos.shape[0], 3, 4)
    return emb, comp


def encode_codons(module: CodonAttention, codons: tx.CodonTable, bases: Level1Bases, exon_range: tuple[int, int],
                  device=None, backend=None) -> torch.Tensor:
    """Run the module on the codons of exons [a, b) packed into one varlen call."""
    a, b = exon_range
    ca, cb = int(codons.exon_offset[a]), int(codons.exon_offset[b])
    sel = slice(ca, cb)
    emb, comp = codon_inputs(codons, sel, bases)
    cu = torch.as_tensor(codons.exon_offset[a:b + 1] - ca, dtype=torch.int64, device=device)
    dev = device or "cpu"
    return module(torch.as_tensor(emb, device=dev), torch.as_tensor(comp, device=dev),
                  torch.as_tensor(codons.frame[sel], device=dev), torch.as_tensor(codons.cds_offset[sel], device=dev),
                  cu, backend=backend)


def level_config(config: dict) -> tuple[dict, dict]:
    levels = config["levels"]
    return dict(levels["level2"]), dict(levels["annotation"])


def load_model_inputs(annotation, contig: str, ann_cfg: dict, source: str):
    """Transcript model of one contig from an annotation table (DataFrame) or parquet path."""
    if not hasattr(annotation, "columns"):
        from genoattn.io.annotation import read_annotation
        annotation = read_annotation(annotation)
    return tx.build_transcripts(annotation, on_error=ann_cfg["on_error"], select=ann_cfg["transcripts"],
                                canonical_tags=tuple(ann_cfg["canonical_tags"]),
                                contigs=[contig], source=source)


def write_exon_coords(writer, exons: tx.ExonTable) -> None:
    from genoattn.io.store import mark_coordinates

    writer.write("exon_id", exons.exon_id, dims=("exon",))
    writer.write("exon_transcript_id", exons.transcript_id, dims=("exon",))
    writer.write("exon_gene_id", exons.gene_id, dims=("exon",))
    writer.write("exon_start", exons.start, dims=("exon",))
    writer.write("exon_end", exons.end, dims=("exon",))
    writer.write("exon_strand", exons.strand, dims=("exon",))
    writer.write("exon_rank", exons.rank, dims=("exon",))
    writer.write("exon_cds_start", exons.cds_start, dims=("exon",))
    writer.write("exon_cds_end", exons.cds_end, dims=("exon",))
    writer.write("exon_type", exons.exon_type.astype(np.int8), dims=("exon",),
                 attrs={"names": list(tx.EXON_TYPES)})
    mark_coordinates(writer, "exon_id", "exon_transcript_id", "exon_gene_id", "exon_start", "exon_end",
                     "exon_strand", "exon_rank", "exon_cds_start", "exon_cds_end", "exon_type")


def run(annotation, level1: str, output: str, contig: str, config: dict, inputs=(), device=None) -> dict:
    """Compute level 2 for one contig and write ``output`` atomically. Returns the QC counts.

    ``annotation``: annotation.parquet path (or its DataFrame); ``config``: the validated config."""
    from genoattn.io.store import atomic_store, input_checksums
    from genoattn.kernels.dispatch import describe
    from genoattn.model import build_module, pick_device

    cfg, ann_cfg = level_config(config)
    device = torch.device(device) if device else pick_device(config["kernels"]["device"])
    source = str(annotation) if not hasattr(annotation, "columns") else "annotation table"
    model = load_model_inputs(annotation, contig, ann_cfg, source)
    bases = Level1Bases(level1)
    if not bases.attrs.get("reverse_complement", True):
        log.warning("level-1 store %s was made with reverse_complement=false: minus-strand codons read "
                    "forward-strand base embeddings", level1)
    qc = dict(model.qc)
    skipped = dict(model.skipped)
    qc.setdefault("missing_level1_bases", 0)
    transcripts = transcripts_with_bases(model.transcripts, bases, qc, skipped, ann_cfg["on_error"], source)
    exons = tx.exon_table(transcripts)
    codons = tx.codon_table(transcripts, exons)
    dim, heads = int(cfg["dim"]), int(cfg["heads"])
    module, identity = build_module(lambda: CodonAttention(bases.dim, dim, heads, int(cfg["layers"])),
                                    "level2", cfg["checkpoint"], int(cfg["seed"]))
    module.to(device)
    qc.update(transcripts=len(transcripts), coding_transcripts=sum(t.coding for t in transcripts),
              exons=len(exons), coding_exons=int((np.diff(codons.exon_offset) > 0).sum()), codons=len(codons))
    attrs = {"level": "level2", "contig": contig, "dim": dim, "model": identity, "kernels": describe(device),
             "config": {"level2": cfg, "annotation": ann_cfg, "level1_dim": bases.dim,
                        "level1_reverse_complement": bool(bases.attrs.get("reverse_complement", True))},
             "inputs": input_checksums([annotation if isinstance(annotation, (str, Path)) else None, *inputs]),
             "qc": qc, "skipped_transcripts": dict(list(skipped.items())[:1000]),
             "codon_assignment": "a codon split by an intron belongs to the exon holding its first base"}
    budget = int(cfg["tokens_per_call"])
    with atomic_store(output, attrs=attrs) as w:
        from genoattn.io.store import mark_coordinates

        codon_dtype = np.dtype(cfg["codon_dtype"])
        emb_out = w.create("codon_embedding", (len(codons), dim), codon_dtype, dims=("codon", "feature"),
                           chunks=(65536, dim))
        exon_emb = np.zeros((len(exons), dim), np.float32)
        counts = np.diff(codons.exon_offset)
        with torch.no_grad():
            for a, b in batches_by_tokens(counts, budget):
                ca, cb = int(codons.exon_offset[a]), int(codons.exon_offset[b])
                if cb == ca:
                    continue
                out = encode_codons(module, codons, bases, (a, b), device=device)
                seg = torch.as_tensor(codons.exon[ca:cb] - a, device=out.device)
                exon_emb[a:b] = segment_mean(out, seg, b - a).float().cpu().numpy()
                emb_out[ca:cb] = out.float().cpu().numpy().astype(codon_dtype)
        w.write("codon_frame", codons.frame, dims=("codon",))
        w.write("codon_exon", codons.exon, dims=("codon",))
        w.write("codon_start", codons.start, dims=("codon",))
        w.write("codon_base_position", codons.base_position, dims=("codon", "codon_base"))
        w.write("exon_codon_offset", codons.exon_offset, dims=("exon_ptr",))
        w.write("exon_embedding", exon_emb, dims=("exon", "feature"))
        write_exon_coords(w, exons)
        mark_coordinates(w, "codon_frame", "codon_exon", "codon_start")
    log.info("level2 %s: %d transcripts, %d exons, %d codons; qc %s", contig, len(transcripts), len(exons),
             len(codons), {k: v for k, v in qc.items() if v})
    return qc
