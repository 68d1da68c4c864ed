"""Triton dense bidirectional attention (+ key padding) and packed variable-length attention.

Both run the flash core of :mod:`genoattn.kernels.triton._flash` (forward and backward kernels,
online softmax in base 2, fp32 accumulation). Contracts: :mod:`genoattn.kernels.reference`.
"""

from __future__ import annotations

import torch

from genoattn.kernels.triton import configs
from genoattn.kernels.triton._flash import (FlashAttention, Plan, csr_from_lists, default_scale, key_bias_arg,
                                             ragged_arange)


def attention(q, k, v, key_padding_mask=None, scale=None):
    """q, k, v: [B, H, L, D]; key_padding_mask [B, L] (True = real). Returns [B, H, L, D]."""
    plan = Plan(block=configs.block_size(q.shape[-1]), sparse=False)
    return FlashAttention.apply(q, k, v, key_bias_arg(key_padding_mask), plan, default_scale(q, scale))


def varlen_plan(cu_seqlens: torch.Tensor, total: int, block: int, device) -> Plan:
    """Per query block, the key blocks spanned by the sequences its tokens belong to."""
    cu = cu_seqlens.to(device, torch.int64)
    lengths = cu[1:] - cu[:-1]
    seq_id = torch.repeat_interleave(torch.arange(lengths.numel(), device=device), lengths)
    if seq_id.numel() != total:
        raise ValueError(f"cu_seqlens ends at {int(cu[-1])} but the packed tensors hold {total} tokens")
    nb = -(-total // block)
    first = torch.arange(nb, device=device) * block
    last = torch.clamp(first + block, max=total) - 1
    lo = cu[seq_id[first]] // block
    hi = (cu[seq_id[last] + 1] - 1) // block
    counts = hi - lo + 1
    indptr, indices = csr_from_lists(counts, ragged_arange(lo, counts))
    return Plan.from_csr(block, indptr, indices, nb, device, seg=seq_id.to(torch.int32).contiguous())


def varlen_attention(q, k, v, cu_seqlens, max_seqlen=None, scale=None):
    """Packed sequences: q, k, v [T, H, D]; cu_seqlens [S+1]. Returns [T, H, D]."""
    T = q.shape[0]
    if T == 0:
        return torch.zeros_like(q)
    plan = varlen_plan(cu_seqlens, T, configs.block_size(q.shape[-1]), q.device)
    as4 = lambda x: x.permute(1, 0, 2)[None]  # [1, H, T, D] view, no copy  # noqa: E731
    o = FlashAttention.apply(as4(q), as4(k), as4(v), None, plan, default_scale(q, scale))
    return o[0].permute(1, 0, 2)
