"""Triton block-sparse attention over a :class:`~genoattn.kernels.layouts.BlockLayout`.

The layout is refined to the kernel block (which must divide ``layout.block_size``; a block size
without a power-of-two divisor >= 16 falls back to the CPU/torch path) and its transpose (per key
block, the query blocks that list it: the dK/dV pass) is built once per layout and cached.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict

import torch

from genoattn.kernels.triton import configs
from genoattn.kernels.triton._flash import (FlashAttention, Plan, csr_from_lists, default_scale, key_bias_arg,
                                             ragged_arange)

_CACHE: "OrderedDict[tuple, tuple]" = OrderedDict()
_CACHE_SIZE = 16


def kernel_block(layout_block: int, head_dim: int) -> int | None:
    pref = configs.block_size(head_dim)
    blk = math.gcd(int(layout_block), pref)
    return blk if blk >= 16 else None


def refine(indptr: torch.Tensor, indices: torch.Tensor, ratio: int, n_rows: int, n_cols: int):
    """Layout over blocks of size bs -> layout over blocks of size bs // ratio (exact), keeping rows
    < n_rows and key blocks < n_cols."""
    indptr = indptr.to(torch.int64)
    indices = indices.to(torch.int64)
    counts = indptr[1:] - indptr[:-1]
    sub = (indices[:, None] * ratio + torch.arange(ratio, device=indices.device)[None, :]).flatten()
    rows_starts = (indptr[:-1] * ratio).repeat_interleave(ratio)
    rows_counts = (counts * ratio).repeat_interleave(ratio)
    idx = sub[ragged_arange(rows_starts, rows_counts)]
    row_of = torch.repeat_interleave(torch.arange(rows_counts.numel(), device=idx.device), rows_counts)
    keep = (idx < n_cols) & (row_of < n_rows)
    counts_new = torch.bincount(row_of[keep], minlength=rows_counts.numel())[:n_rows]
    if counts_new.numel() < n_rows:
        counts_new = torch.cat([counts_new, counts_new.new_zeros(n_rows - counts_new.numel())])
    return csr_from_lists(counts_new, idx[keep])


def block_sparse_plan(layout, n_tokens: int, head_dim: int, device) -> Plan | None:
    blk = kernel_block(layout.block_size, head_dim)
    if blk is None:
        return None
    key = (id(layout), n_tokens, blk, str(device))
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is layout:
        _CACHE.move_to_end(key)
        return hit[1]
    nb = -(-n_tokens // blk)
    indptr, indices = refine(layout.indptr.cpu(), layout.indices.cpu(), layout.block_size // blk, nb, nb)
    plan = Plan.from_csr(blk, indptr, indices, nb, device)
    _CACHE[key] = (layout, plan)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return plan


def block_sparse_attention(q, k, v, layout, token_mask=None, scale=None):
    """q, k, v: [B, H, N, D]; layout: BlockLayout; token_mask [B, N] (True = real key)."""
    N = q.shape[2]
    plan = block_sparse_plan(layout, N, q.shape[-1], q.device)
    if plan is None:
        warnings.warn(f"block_sparse_attention: layout block size {layout.block_size} has no power-of-two "
                      "divisor >= 16; using the torch path", stacklevel=2)
        from genoattn.kernels import cpu
        return cpu.block_sparse_attention(q, k, v, layout, token_mask, scale)
    return FlashAttention.apply(q, k, v, key_bias_arg(token_mask), plan, default_scale(q, scale))
