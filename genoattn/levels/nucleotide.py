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
from torch import nn

from genoattn import alphabet, kernels

log = logging.getLogger(__name__)


class NucleotideAttention(nn.Module):
    """Base embedding + learned positions + one pre-norm transformer block (attention + MLP).

    Shapes::

        tokens  [B, W]     uint8/long codes
        mask    [B, W]     bool, True = real base (not PAD)
        returns [B, W, dim]
    """

    def __init__(self, dim: int = 128, heads: int = 8, window: int = 512, mlp_ratio: int = 4):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.dim, self.heads, self.window = dim, heads, window
        self.base = nn.Parameter(torch.randn(4, dim) * 0.5)
        self.register_buffer("composition", torch.from_numpy(alphabet.COMPOSITION.copy()), persistent=False)
        self.pos = nn.Parameter(torch.randn(window, dim) * 0.02)
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        comp = self.composition[tokens.long()]            # [B, W, 4]; PAD rows are zero
        return comp @ self.base + self.pos[: tokens.shape[1]]

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None, backend: str | None = None):
        if mask is None:
            mask = tokens != alphabet.PAD
        x = self.embed(tokens)
        B, W, _ = x.shape
        qkv = self.qkv(self.norm1(x)).view(B, W, 3, self.heads, self.dim // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)     # [B, H, W, D] each
        att = kernels.attention(q, k, v, key_padding_mask=mask, backend=backend)
        x = x + self.proj(att.transpose(1, 2).reshape(B, W, self.dim))
        return x + self.mlp(self.norm2(x))


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
