"""Level 5: genome-wide block-sparse attention over all bins of all contigs.

Sequence
--------
The bins of every contig (level-4 stores, in reference order) are laid end to end; each contig is
padded to a multiple of ``block_size`` so that no block holds bins of two contigs. Padding tokens
and masked bins are masked as keys; their own outputs are written as zeros (``masked``).

Block layout (CSR over blocks, :class:`genoattn.kernels.BlockLayout`)
--------------------------------------------------------------------
* local: query block ``i`` of a contig sees key blocks ``i-w .. i+w`` of the same contig, with
  ``w = ceil(local_window / 2 / block_size)`` (``local_window`` in bins, default 500), so a local
  block never crosses a contig end;
* random: ``random_blocks`` key blocks per query block drawn anywhere in the genome with a seeded
  generator (``seed``);
* global (optional): ``global_blocks`` evenly spaced blocks that see, and are seen by, every block;
* trans: each inter-chromosomal link of ``hic/trans.zarr`` (top Hi-C trans contacts and breakpoints
  from the BEDPE) connects the blocks of its two bins, both ways (at most ``max_trans_links``,
  breakpoints first, then by score).

The layout depends only on the bin layout and these options; it is built once and cached beside
the output (``results/{reference}/level5_layout.npz``, keyed by a hash of both) and in memory.

Output: ``results/{reference}/level5.zarr``: ``embedding`` float32 [bin, feature] (genome-wide)
with coords ``chrom``, ``start``, ``end``, ``masked``; root attrs carry the layout statistics.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import uuid
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from genoattn import kernels
from genoattn.kernels import BlockLayout

log = logging.getLogger(__name__)

_MEMORY_CACHE: dict[str, tuple[BlockLayout, dict]] = {}


def _strings(a) -> np.ndarray:
    """zarr string arrays (numpy StringDType) as a plain unicode array."""
    return np.asarray(a, dtype=object).astype(str)


# -- sequence layout ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SequenceLayout:
    """Where each contig's bins sit in the padded genome-wide sequence."""

    contigs: tuple[str, ...]
    n_bins: tuple[int, ...]
    block_size: int

    @property
    def n_blocks_per_contig(self) -> np.ndarray:
        return np.array([-(-n // self.block_size) for n in self.n_bins], dtype=np.int64)

    @property
    def block_offsets(self) -> np.ndarray:
        nb = self.n_blocks_per_contig
        return np.concatenate([[0], np.cumsum(nb)]).astype(np.int64)

    @property
    def n_blocks(self) -> int:
        return int(self.block_offsets[-1])

    @property
    def n_tokens(self) -> int:
        return self.n_blocks * self.block_size

    def token_positions(self) -> np.ndarray:
        """Position in the padded sequence of every real bin (contig order, then bin order)."""
        offs = self.block_offsets[:-1] * self.block_size
        return np.concatenate([o + np.arange(n, dtype=np.int64) for o, n in zip(offs, self.n_bins)]) \
            if self.n_bins else np.zeros(0, dtype=np.int64)

    def contig_of_block(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.contigs)), self.n_blocks_per_contig)

    def key(self) -> dict:
        return {"contigs": list(self.contigs), "n_bins": [int(n) for n in self.n_bins],
                "block_size": int(self.block_size)}


# -- block layout ---------------------------------------------------------------------------------
def local_radius(local_window: int, block_size: int) -> int:
    return max(0, math.ceil(local_window / 2 / block_size))


def build_block_layout(seq: SequenceLayout, local_window: int = 500, random_blocks: int = 2,
                       global_blocks: int = 0, seed: int = 0, trans_block_pairs: np.ndarray | None = None):
    """Build the CSR block layout. ``trans_block_pairs`` int64 [P, 2] (block ids). Returns (layout, stats)."""
    nb = seq.n_blocks
    offs = seq.block_offsets
    contig = seq.contig_of_block()
    blocks = np.arange(nb, dtype=np.int64)
    lo, hi = offs[contig], offs[contig + 1]           # block range of each block's contig
    w = local_radius(local_window, seq.block_size)
    rows, cols = [], []
    for d in range(-w, w + 1):
        k = blocks + d
        ok = (k >= lo) & (k < hi)
        rows.append(blocks[ok])
        cols.append(k[ok])
    n_local = int(sum(len(r) for r in rows))
    if random_blocks and nb:
        rng = np.random.default_rng(seed)
        r = rng.integers(0, nb, size=(nb, random_blocks), dtype=np.int64)
        rows.append(np.repeat(blocks, random_blocks))
        cols.append(r.ravel())
    global_ids = np.zeros(0, dtype=np.int64)
    if global_blocks and nb:
        global_ids = np.unique(np.linspace(0, nb - 1, min(global_blocks, nb)).round().astype(np.int64))
        for g in global_ids:
            rows += [np.full(nb, g), blocks]
            cols += [blocks, np.full(nb, g)]
    n_trans = 0
    if trans_block_pairs is not None and len(trans_block_pairs):
        p = np.asarray(trans_block_pairs, dtype=np.int64).reshape(-1, 2)
        rows += [p[:, 0], p[:, 1]]
        cols += [p[:, 1], p[:, 0]]
        n_trans = len(p)
    rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    cols = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    flat = np.unique(rows * max(nb, 1) + cols)
    r, c = flat // max(nb, 1), flat % max(nb, 1)
    indptr = np.zeros(nb + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=nb), out=indptr[1:])
    layout = BlockLayout(seq.block_size, torch.from_numpy(indptr), torch.from_numpy(c.astype(np.int64)))
    stats = {"n_blocks": nb, "nnz_blocks": int(len(c)), "density": float(len(c) / max(nb * nb, 1)),
             "local_radius_blocks": w, "local_span_bins": (2 * w + 1) * seq.block_size,
             "local_block_pairs": n_local, "random_blocks": int(random_blocks),
             "global_block_ids": global_ids.tolist(), "trans_block_pairs": n_trans, "seed": int(seed),
             "block_size": int(seq.block_size)}
    return layout, stats


def layout_key(seq: SequenceLayout, options: dict, trans_block_pairs: np.ndarray | None) -> str:
    h = hashlib.sha256(json.dumps({"seq": seq.key(), "options": options}, sort_keys=True).encode())
    if trans_block_pairs is not None:
        h.update(np.ascontiguousarray(np.asarray(trans_block_pairs, dtype=np.int64)).tobytes())
    return h.hexdigest()


def cached_block_layout(seq: SequenceLayout, options: dict, trans_block_pairs=None, cache_path=None):
    """Layout from the in-memory cache, else the on-disk cache (if its key matches), else built
    (and saved atomically to ``cache_path``). Returns (layout, stats, source) with source in
    {'memory', 'disk', 'built'}."""
    key = layout_key(seq, options, trans_block_pairs)
    if key in _MEMORY_CACHE:
        layout, stats = _MEMORY_CACHE[key]
        return layout, dict(stats), "memory"
    if cache_path and os.path.exists(cache_path):
        try:
            with np.load(cache_path, allow_pickle=False) as z:
                if str(z["key"]) == key:
                    layout = BlockLayout(int(z["block_size"]), torch.from_numpy(z["indptr"].astype(np.int64)),
                                         torch.from_numpy(z["indices"].astype(np.int64)))
                    stats = json.loads(str(z["stats"]))
                    _MEMORY_CACHE[key] = (layout, stats)
                    return layout, dict(stats), "disk"
        except (OSError, KeyError, ValueError) as exc:
            log.warning("ignoring unreadable layout cache %s (%s); rebuilding", cache_path, exc)
    layout, stats = build_block_layout(seq, trans_block_pairs=trans_block_pairs, **options)
    stats["key"] = key
    _MEMORY_CACHE[key] = (layout, stats)
    if cache_path:
        os.makedirs(os.path.dirname(os.path.abspath(cache_path)), exist_ok=True)
        tmp = f"{cache_path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}.npz"
        np.savez(tmp, key=np.array(key), block_size=np.array(layout.block_size),
                 indptr=layout.indptr.numpy(), indices=layout.indices.numpy(), stats=np.array(json.dumps(stats)))
        os.replace(tmp, cache_path)
    return layout, dict(stats), "built"


def clear_memory_cache() -> None:
    _MEMORY_CACHE.clear()


# -- trans links ----------------------------------------------------------------------------------
def trans_links_to_blocks(trans_path, seq: SequenceLayout, bin_starts: list[np.ndarray],
                          max_links: int | None = None):
    """Map the links of ``trans.zarr`` to (query block, key block) pairs.

    Breakpoint links (``source`` naming a breakpoint/BEDPE) come first, then Hi-C links by score;
    ``max_links`` caps the total. Links on contigs outside the sequence are skipped and counted.
    Returns (pairs int64 [P, 2], stats).
    """
    from genoattn.io.store import open_group

    stats = {"trans_links_in_store": 0, "trans_links_used": 0, "trans_links_skipped_contig": 0}
    if not trans_path or not os.path.exists(trans_path):
        return np.zeros((0, 2), dtype=np.int64), stats
    g = open_group(trans_path)
    n = int(g["chrom1"].shape[0]) if "chrom1" in g else 0
    stats["trans_links_in_store"] = n
    if n == 0:
        return np.zeros((0, 2), dtype=np.int64), stats
    c1 = _strings(g["chrom1"][:])
    c2 = _strings(g["chrom2"][:])
    s1 = np.asarray(g["start1"][:], dtype=np.int64)
    s2 = np.asarray(g["start2"][:], dtype=np.int64)
    score = np.asarray(g["score"][:], dtype=np.float64) if "score" in g else np.zeros(n)
    source = _strings(g["source"][:]) if "source" in g else np.full(n, "hic")
    is_bp = np.char.find(np.char.lower(source), "break") >= 0
    is_bp |= np.char.find(np.char.lower(source), "bedpe") >= 0
    order = np.lexsort((-np.nan_to_num(score, nan=-np.inf), ~is_bp))
    index = {c: i for i, c in enumerate(seq.contigs)}
    a = np.array([index.get(c, -1) for c in c1], dtype=np.int64)[order]
    b = np.array([index.get(c, -1) for c in c2], dtype=np.int64)[order]
    s1, s2, bp = s1[order], s2[order], is_bp[order]
    ok = (a >= 0) & (b >= 0)
    stats["trans_links_skipped_contig"] = int((~ok).sum())
    a, b, s1, s2, bp = a[ok], b[ok], s1[ok], s2[ok], bp[ok]
    if max_links is not None:
        a, b, s1, s2, bp = a[:max_links], b[:max_links], s1[:max_links], s2[:max_links], bp[:max_links]

    def block_of(contig_idx, pos):
        out = np.zeros(len(pos), dtype=np.int64)
        for ci in np.unique(contig_idx):
            sel = contig_idx == ci
            bins = np.maximum(np.searchsorted(bin_starts[ci], pos[sel], side="right") - 1, 0)
            out[sel] = seq.block_offsets[ci] + bins // seq.block_size
        return out

    pairs = np.stack([block_of(a, s1), block_of(b, s2)], axis=1) if len(a) else np.zeros((0, 2), np.int64)
    stats["trans_links_used"] = int(len(pairs))
    stats["breakpoint_links_used"] = int(bp.sum())
    return pairs.astype(np.int64), stats


# -- the module -----------------------------------------------------------------------------------
def sinusoidal(position: torch.Tensor, dim: int, base: float = 10000.0) -> torch.Tensor:
    half = dim // 2
    freq = torch.exp(-math.log(base) * torch.arange(half, device=position.device, dtype=torch.float32) / half)
    ang = position.float()[:, None] * freq[None]
    out = torch.cat([ang.sin(), ang.cos()], dim=-1)
    return torch.nn.functional.pad(out, (0, dim - 2 * half))


class ChromosomeAttention(nn.Module):
    """Input projection + sinusoidal bin position within its contig, one pre-norm block-sparse
    attention block with an MLP, final LayerNorm.

    Shapes::

        x          [N, in_dim]   padded genome-wide sequence (N a multiple of block_size)
        position   [N]           bin index within its contig
        token_mask [N]           bool, True = real unmasked bin (keys)
        returns    [N, dim]
    """

    def __init__(self, in_dim: int, dim: int = 512, heads: int = 32, mlp_ratio: int = 2):
        super().__init__()
        if dim % heads:
            raise ValueError(f"levels.level5: dim {dim} is not divisible by heads {heads}")
        self.dim, self.heads = dim, heads
        self.in_proj = nn.Linear(in_dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))
        self.norm_out = nn.LayerNorm(dim)

    def qkv_heads(self, x):
        N = x.shape[0]
        q, k, v = self.qkv(self.norm1(x)).view(N, 3, self.heads, self.dim // self.heads).permute(1, 2, 0, 3)
        return q[None], k[None], v[None]                                  # [1, H, N, D]

    def forward(self, x, position, layout: BlockLayout, token_mask, backend: str | None = None):
        x = self.in_proj(x) + sinusoidal(position, self.dim).to(x.dtype)
        q, k, v = self.qkv_heads(x)
        att = kernels.block_sparse_attention(q, k, v, layout, token_mask[None], backend=backend)
        x = x + self.proj(att[0].transpose(0, 1).reshape(x.shape[0], self.dim))
        x = x + self.mlp(self.norm2(x))
        return self.norm_out(x)


class GenomeBins:
    """Level 5 ready to run: the level-4 embeddings of every contig, the block layout and the module.
    ``embed`` runs it on the stored level-4 embeddings or on changed ones (variant effects)."""

    def __init__(self, level4_paths, cfg: dict, trans_path=None, kernels_cfg: dict | None = None, layout_cache=None):
        from genoattn.model import build_module, pick_device

        contigs, chrom, start, end, masked, emb = load_level4(level4_paths)
        if not contigs:
            raise ValueError("level 5 needs at least one level-4 store (check references.*.include/exclude)")
        in_dim = emb[0].shape[1]
        for c, e in zip(contigs, emb):
            if e.shape[1] != in_dim:
                raise ValueError(f"level-4 store of {c} has feature dim {e.shape[1]}, others {in_dim}: rerun level4")
        seq = SequenceLayout(tuple(contigs), tuple(len(s) for s in start), int(cfg["block_size"]))
        pairs, tstats = (trans_links_to_blocks(trans_path, seq, start, cfg.get("max_trans_links"))
                         if cfg["trans_links"] else (None, {"trans_links_used": 0}))
        layout, lstats, source = cached_block_layout(seq, layout_options(cfg), pairs, layout_cache)
        log.info("level5: %d bins in %d contigs, %d blocks, %d nnz blocks (density %.4f), layout %s",
                 sum(seq.n_bins), len(contigs), lstats["n_blocks"], lstats["nnz_blocks"], lstats["density"], source)
        pos = seq.token_positions()
        mask_real = np.concatenate(masked)
        token_mask = np.zeros(seq.n_tokens, dtype=bool)
        token_mask[pos] = ~mask_real
        position = np.zeros(seq.n_tokens, dtype=np.int64)
        position[pos] = np.concatenate([np.arange(n) for n in seq.n_bins])
        module, identity = build_module(lambda: ChromosomeAttention(in_dim, cfg["dim"], cfg["heads"]), "level5",
                                        cfg["checkpoint"], cfg["seed"])
        self.device = pick_device(kernels_cfg["device"])
        self.module, self.identity, self.backend = module.to(self.device), identity, kernels_cfg.get("backend")
        self.contigs, self.chrom, self.start, self.end, self.emb = contigs, chrom, start, end, emb
        self.seq, self.lstats, self.tstats, self.source, self.in_dim = seq, lstats, tstats, source, in_dim
        self.pos, self.mask_real = pos, mask_real
        self._layout = layout.to(self.device)
        self._token_mask = torch.from_numpy(token_mask).to(self.device)
        self._position = torch.from_numpy(position).to(self.device)
        self.offsets = np.concatenate([[0], np.cumsum([len(s) for s in start])]).astype(np.int64)

    @torch.inference_mode()
    def embed(self, emb: list[np.ndarray] | None = None) -> np.ndarray:
        """[bins of every contig, dim] (zeros for masked bins); ``emb`` per contig defaults to the stored one."""
        x = np.zeros((self.seq.n_tokens, self.in_dim), dtype=np.float32)
        x[self.pos] = np.concatenate(self.emb if emb is None else emb)
        out = self.module(torch.from_numpy(x).to(self.device), self._position, self._layout, self._token_mask,
                          backend=self.backend)
        out = out.float().cpu().numpy()[self.pos]
        out[self.mask_real] = 0.0
        return out


# -- the rule's entry point -----------------------------------------------------------------------
def load_level4(paths):
    from genoattn.io.store import open_group

    contigs, chrom, start, end, masked, emb = [], [], [], [], [], []
    for p in paths:
        g = open_group(p)
        s = np.asarray(g["start"][:], dtype=np.int64)
        c = _strings(g["chrom"][:])
        name = str(g.attrs.get("contig") or (c[0] if len(c) else os.path.basename(str(p)).removesuffix(".zarr")))
        contigs.append(name)
        chrom.append(c)
        start.append(s)
        end.append(np.asarray(g["end"][:], dtype=np.int64))
        masked.append(np.asarray(g["masked"][:], dtype=bool))
        emb.append(np.asarray(g["embedding"][:], dtype=np.float32))
    return contigs, chrom, start, end, masked, emb


def layout_options(cfg: dict) -> dict:
    return {"local_window": int(cfg["local_window"]), "random_blocks": int(cfg["random_blocks"]),
            "global_blocks": int(cfg["global_blocks"]), "seed": int(cfg["seed"])}


def run(level4_paths, output, cfg: dict, trans_path=None, kernels_cfg: dict | None = None,
        layout_cache=None, inputs=()) -> None:
    """Compute level 5 over the level-4 stores (in reference contig order) and write ``output``."""
    from genoattn.io.store import atomic_store, input_checksums, mark_coordinates, upstream_inputs
    from genoattn.kernels.dispatch import describe

    genome = GenomeBins(level4_paths, cfg, trans_path, kernels_cfg, layout_cache)
    contigs, chrom, start, end = genome.contigs, genome.chrom, genome.start, genome.end
    lstats, tstats, source, in_dim = genome.lstats, genome.tstats, genome.source, genome.in_dim
    pos, mask_real, identity, device = genome.pos, genome.mask_real, genome.identity, genome.device
    out = genome.embed()

    attrs = {"level": "level5", "contigs": contigs, "dim": cfg["dim"], "heads": cfg["heads"], "model": identity,
             "kernels": describe(device),
             "config": {**cfg, "in_dim": in_dim}, "layout": {**lstats, **tstats, "cache": source},
             "nnz_blocks": lstats["nnz_blocks"], "density": lstats["density"], "random_seed": int(cfg["seed"]),
             "n_trans_links_used": int(tstats.get("trans_links_used", 0)), "n_bins": int(len(pos)),
             "n_masked": int(mask_real.sum()),
             "inputs": {**upstream_inputs([*level4_paths, trans_path]), **input_checksums(inputs)}}
    with atomic_store(output, attrs=attrs) as w:
        w.write("chrom", np.concatenate(chrom).astype(str), dims=("bin",))
        w.write("start", np.concatenate(start), dims=("bin",))
        w.write("end", np.concatenate(end), dims=("bin",))
        w.write("masked", mask_real, dims=("bin",))
        w.write("embedding", out.astype(np.float32), dims=("bin", "feature"))
        mark_coordinates(w, "chrom", "start", "end", "masked")
