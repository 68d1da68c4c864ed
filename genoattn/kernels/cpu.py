"""CPU fast paths: never materialise more than one block of scores.

Dense attention tiles the queries: one ``[B, H, block_q, L]`` score block at a time.
"""

from __future__ import annotations

import math

import torch

from genoattn.kernels.reference import NEG

BLOCK_Q = 128


def dense_attention(q, k, v, key_padding_mask=None, scale=None, block_q: int = BLOCK_Q):
    """Same contract as :func:`genoattn.kernels.reference.dense_attention`."""
    scale = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    L = q.shape[2]
    bias = None
    if key_padding_mask is not None:
        keep = key_padding_mask[:, None, None, :].bool()
        bias = torch.zeros(keep.shape, dtype=q.dtype, device=q.device).masked_fill(~keep, NEG)
    outs = []
    kt = k.transpose(-1, -2)
    for s in range(0, L, block_q):
        scores = (q[:, :, s:s + block_q] @ kt) * scale
        if bias is not None:
            scores = scores + bias
        p = torch.softmax(scores, dim=-1)
        if key_padding_mask is not None:
            p = p * keep.to(p.dtype)  # a row with no real key sums to zero, not to one
        outs.append(p @ v)
    return torch.cat(outs, dim=2) if outs else torch.zeros_like(q)
