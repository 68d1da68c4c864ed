"""Level 1: bidirectional attention over 512 bp windows.

Input contract
--------------
* tokens: uint8 codes of :mod:`genoattn.alphabet`, ``[B, window]``; ``PAD`` (0) fills the tail of a
  window that runs past the contig end and is masked out of attention and pooling.
* An IUPAC code (N included) embeds as the mean of the embeddings of the bases it stands for.

Output contract: results/{reference}/level1/{contig}.zarr
----------------------------------------------------------
Dims ``window``, ``feature``, ``exon_base``.

* ``window_embedding`` float32 [window, feature]: mean of the per-base outputs over the real
  non-N bases of the window; zeros for a skipped window.
* ``window_start``, ``window_end`` int64 [window] (coordinates): 0-based half-open, ``end``
  clipped to the contig; ``window_n_bases`` int32 (real non-N bases); ``window_skipped`` bool
  (all-N windows, not computed).
* ``exon_base_embedding`` [exon_base, feature] (float16 by default), ``exon_base_position`` int64
  (coordinate: the sorted union of the contig's annotated exon positions), ``exon_base_token``
  uint8. A base covered by several windows (stride < window) takes the output of the window whose
  centre is nearest to it. With ``reverse_complement`` the outputs are the mean of the forward
  pass and the reverse-complement pass mapped back, so both strands of a base pair share one
  embedding; minus-strand features read them in reverse genomic order.

Windows start at ``0, stride, 2*stride, ...``: ``ceil(length / stride)`` per contig.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genoattn import alphabet, kernels

log = logging.getLogger(__name__)


def rotary_tables(length: int, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [length, head_dim // 2] of rotary position embeddings (RoPE)."""
    half = head_dim // 2
    inv = 1.0 / (base ** (torch.arange(half, dtype=torch.float32) / half))
    angle = torch.arange(length, dtype=torch.float32)[:, None] * inv[None]
    return angle.cos(), angle.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Apply RoPE to ``x`` [B, H, W, D] (the two halves of the head dim are the pairs)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class NucleotideBlock(nn.Module):
    """Pre-norm transformer block: multi-head attention with rotary positions, then an MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x, mask, cos, sin, backend=None):
        B, W, D = x.shape
        qkv = self.qkv(self.norm1(x)).view(B, W, 3, self.heads, D // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)     # [B, H, W, head_dim] each
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        att = kernels.attention(q, k, v, key_padding_mask=mask, backend=backend)
        x = x + self.proj(att.transpose(1, 2).reshape(B, W, D))
        return x + self.mlp(self.norm2(x))


class NucleotideAttention(nn.Module):
    """Base embedding, a local depthwise convolution, ``layers`` transformer blocks, a final norm.

    Positions enter as rotary embeddings of q and k (relative: attention can find a base's neighbours
    wherever the window starts); the depthwise convolution over ``conv_kernel`` bases gives every base
    its immediate context before attention. Both are what let masked-base training learn sequence
    context rather than base composition (benchmarks/RESULTS.md, level 1 training).

    Shapes::

        tokens  [B, W]     uint8/long codes (W <= window)
        mask    [B, W]     bool, True = real base (not PAD)
        returns [B, W, dim]
    """

    def __init__(self, dim: int = 128, heads: int = 8, window: int = 512, layers: int = 2, conv_kernel: int = 9,
                 mlp_ratio: int = 4):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        if (dim // heads) % 2:
            raise ValueError(f"head dim {dim // heads} must be even (rotary positions rotate pairs)")
        self.dim, self.heads, self.window = dim, heads, window
        self.base = nn.Parameter(torch.randn(4, dim) * 0.5)
        self.register_buffer("composition", torch.from_numpy(alphabet.COMPOSITION.copy()), persistent=False)
        self.conv_kernel = conv_kernel
        if conv_kernel:
            self.conv_norm = nn.LayerNorm(dim)
            self.conv = nn.Conv1d(dim, dim, conv_kernel, padding=conv_kernel // 2, groups=dim)
            self.conv_proj = nn.Linear(dim, dim)
        self.blocks = nn.ModuleList(NucleotideBlock(dim, heads, mlp_ratio) for _ in range(layers))
        self.norm_out = nn.LayerNorm(dim)
        cos, sin = rotary_tables(window, dim // heads)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def base_embedding(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, W, dim]: each code's A/C/G/T fractions times the base table (PAD rows are zero)."""
        return self.composition[tokens.long()] @ self.base

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.base_embedding(tokens)
        if self.conv_kernel:
            real = (tokens != alphabet.PAD).unsqueeze(-1).to(x.dtype)
            # padding enters the convolution as zeros (as past the window's ends), never as LayerNorm's bias
            h = self.conv((self.conv_norm(x) * real).transpose(1, 2)).transpose(1, 2)
            x = x + self.conv_proj(F.gelu(h))
        return x

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None, backend: str | None = None,
                checkpoint_blocks: bool = False):
        if mask is None:
            mask = tokens != alphabet.PAD
        x = self.embed(tokens)
        W = x.shape[1]
        cos, sin = self.rope_cos[:W], self.rope_sin[:W]
        for block in self.blocks:
            if checkpoint_blocks and torch.is_grad_enabled():  # gradient checkpointing (training option)
                x = torch.utils.checkpoint.checkpoint(block, x, mask, cos, sin, backend, use_reentrant=False)
            else:
                x = block(x, mask, cos, sin, backend)
        return self.norm_out(x)


def level1_module(cfg: dict) -> NucleotideAttention:
    """The level-1 module a validated ``levels.level1`` section describes (the runner and training agree)."""
    return NucleotideAttention(cfg["dim"], cfg["heads"], cfg["window"], cfg["layers"], cfg["conv_kernel"])


def strand_symmetric(module: NucleotideAttention, tokens: torch.Tensor, backend: str | None = None):
    """Mean of the forward pass and the reverse-complement pass mapped back onto forward positions."""
    comp = torch.as_tensor(alphabet.COMPLEMENT, device=tokens.device)
    rc = comp[tokens.long().flip(1)]
    return 0.5 * (module(tokens, backend=backend) + module(rc, backend=backend).flip(1))


# -- windows -------------------------------------------------------------------------------------
def window_starts(length: int, stride: int) -> np.ndarray:
    return np.arange(0, length, stride, dtype=np.int64)


def owner_window(positions: np.ndarray, length: int, window: int, stride: int) -> np.ndarray:
    """Index of the window whose centre is nearest to each position, among windows covering it."""
    n = math.ceil(length / stride)
    kmax = np.minimum(positions // stride, n - 1)
    kmin = np.maximum(-((window - 1 - positions) // stride), 0)  # ceil((pos - window + 1) / stride)
    best = np.rint((positions - (window - 1) / 2.0) / stride).astype(np.int64)
    return np.clip(best, kmin, kmax)


def exon_positions(annotation, contig: str, length: int) -> np.ndarray:
    """Sorted unique 0-based positions covered by any annotated exon of ``contig``."""
    if annotation is None:
        return np.zeros(0, dtype=np.int64)
    ex = annotation[(annotation["feature"] == "exon") & (annotation["contig"] == contig)]
    if ex.empty:
        return np.zeros(0, dtype=np.int64)
    iv = ex[["start", "end"]].to_numpy(dtype=np.int64)
    iv = iv[np.argsort(iv[:, 0], kind="stable")]
    merged = []
    cs, ce = iv[0]
    for s, e in iv[1:]:
        if s <= ce:
            ce = max(ce, e)
        else:
            merged.append((cs, ce))
            cs, ce = s, e
    merged.append((cs, ce))
    merged = np.array(merged, dtype=np.int64)
    merged[:, 1] = np.minimum(merged[:, 1], length)
    return np.concatenate([np.arange(s, e, dtype=np.int64) for s, e in merged if e > s]) if len(merged) else \
        np.zeros(0, dtype=np.int64)
