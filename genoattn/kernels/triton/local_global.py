"""Triton local-global attention: sliding window of ``w`` tokens (|i - j| <= w // 2, within a
segment) plus ``g`` global tokens that attend to and are attended by all.

Per query block the kernel visits the global key blocks and the band of key blocks within w // 2
(all key blocks for query blocks that hold a global token): work and memory O(N * (w + g)).
"""

from __future__ import annotations

import torch

from genoattn.kernels.triton import configs
from genoattn.kernels.triton._flash import (FlashAttention, Plan, csr_from_lists, default_scale, key_bias_arg,
                                             ragged_arange)


def local_global_plan(n: int, window: int, n_global: int, block: int, device, segment_ids=None) -> Plan:
    half = window // 2
    g = max(0, min(int(n_global), n))
    nb = -(-n // block)
    qb = torch.arange(nb, dtype=torch.int64)
    lo = torch.clamp(qb * block - half, min=0) // block
    hi = torch.clamp(qb * block + block - 1 + half, max=n - 1) // block
    ng = -(-g // block)
    pre = torch.clamp(lo, max=ng)  # global blocks before the band
    hi = torch.maximum(hi, torch.full_like(hi, ng - 1))  # global blocks past the band join it
    is_g = qb * block < g
    lo = torch.where(is_g, 0, lo)
    hi = torch.where(is_g, nb - 1, hi)
    pre = torch.where(is_g, 0, pre)
    band = hi - lo + 1
    starts = torch.stack([torch.zeros_like(lo), lo], 1).flatten()
    lens = torch.stack([pre, band], 1).flatten()
    indptr, indices = csr_from_lists(pre + band, ragged_arange(starts, lens))
    seg = None if segment_ids is None else segment_ids.to(device, torch.int32).contiguous()
    return Plan.from_csr(block, indptr, indices, nb, device, seg=seg, local=True, half_window=half, n_global=g)


def local_global_attention(q, k, v, window: int, n_global: int, segment_ids=None, key_padding_mask=None,
                           scale=None):
    """q, k, v: [B, H, N, D]; first ``n_global`` tokens global; segment_ids [N]; key_padding_mask [B, N]."""
    N = q.shape[2]
    if N == 0:
        return torch.zeros_like(q)
    plan = local_global_plan(N, window, n_global, configs.block_size(q.shape[-1]), q.device, segment_ids)
    return FlashAttention.apply(q, k, v, key_bias_arg(key_padding_mask), plan, default_scale(q, scale))
