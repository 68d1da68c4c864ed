"""Plain-torch reference implementations: the specification of every attention pattern.

Readable and slow on purpose: each materialises the full score matrix. Tests compare the
fast paths (``cpu.py``, ``triton/``) against these in float64.

Conventions shared by every function in ``genoattn.kernels``
--------------------------------------------------------------
* ``scale`` defaults to ``1/sqrt(head_dim)``.
* Masks are boolean with ``True`` = allowed / real token.
* A query with no allowed key returns a zero vector (never NaN), and contributes zero gradient.
* Shapes: ``B`` batch, ``H`` heads, ``L``/``N`` tokens, ``D`` head dim, ``T`` packed tokens.
"""

from __future__ import annotations

import math

import torch

NEG = -1.0e30  # large finite negative: -inf makes fully-masked rows NaN


def neg_for(dtype: torch.dtype) -> float:
    """NEG where the dtype holds it; a quarter of the dtype's lowest value otherwise (float16)."""
    return max(NEG, torch.finfo(dtype).min / 4)


def _masked_softmax_av(scores: torch.Tensor, allowed: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    scores = scores.masked_fill(~allowed, neg_for(scores.dtype))
    p = torch.softmax(scores, dim=-1) * allowed.to(scores.dtype)
    return p @ v


def dense_attention(q, k, v, key_padding_mask=None, scale=None):
    """Bidirectional attention. q, k, v: [B, H, L, D]; key_padding_mask: [B, L] (True = real)."""
    scale = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    scores = (q @ k.transpose(-1, -2)) * scale
    B, H, Lq, Lk = scores.shape
    allowed = torch.ones(B, 1, Lq, Lk, dtype=torch.bool, device=q.device)
    if key_padding_mask is not None:
        allowed = allowed & key_padding_mask[:, None, None, :].bool()
    return _masked_softmax_av(scores, allowed, v)


def varlen_attention(q, k, v, cu_seqlens, scale=None):
    """Packed sequences. q, k, v: [T, H, D]; cu_seqlens: [S+1] int offsets; each sequence
    attends only within itself. Returns [T, H, D]."""
    out = torch.zeros_like(q)
    bounds = cu_seqlens.tolist()
    for s, e in zip(bounds[:-1], bounds[1:]):
        if e > s:
            out[s:e] = dense_attention(q[None, s:e].transpose(1, 2), k[None, s:e].transpose(1, 2),
                                       v[None, s:e].transpose(1, 2), scale=scale)[0].transpose(0, 1)
    return out


def block_layout_mask(layout, n_tokens: int, device=None) -> torch.Tensor:
    """Expand a :class:`~genoattn.kernels.layouts.BlockLayout` to a dense [N, N] boolean mask."""
    bs = layout.block_size
    nb = -(-n_tokens // bs)
    block = torch.zeros(nb, nb, dtype=torch.bool, device=device)
    indptr = layout.indptr.tolist()
    indices = layout.indices.to(device)
    for qb in range(nb):
        block[qb, indices[indptr[qb]:indptr[qb + 1]]] = True
    return block.repeat_interleave(bs, 0).repeat_interleave(bs, 1)[:n_tokens, :n_tokens]


def block_sparse_attention(q, k, v, layout, token_mask=None, scale=None):
    """Block-sparse attention. q, k, v: [B, H, N, D]; ``layout`` lists for each query block the
    key blocks it attends to; token_mask: [B, N] masks keys (padding, masked bins)."""
    scale = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    N = q.shape[2]
    allowed = block_layout_mask(layout, N, device=q.device)[None, None]
    if token_mask is not None:
        allowed = allowed & token_mask[:, None, None, :].bool()
    scores = (q @ k.transpose(-1, -2)) * scale
    return _masked_softmax_av(scores, allowed, v)


def local_global_mask(n: int, window: int, n_global: int, segment_ids=None, device=None) -> torch.Tensor:
    """[N, N] mask: tokens 0..n_global-1 are global (attend to all, attended by all); a local
    query i attends local keys j with |i - j| <= window // 2 in the same segment."""
    i = torch.arange(n, device=device)
    allowed = (i[:, None] - i[None, :]).abs() <= window // 2
    if segment_ids is not None:
        seg = segment_ids.to(device)
        allowed = allowed & (seg[:, None] == seg[None, :])
    is_global = i < n_global
    return allowed | is_global[:, None] | is_global[None, :]


def local_global_attention(q, k, v, window: int, n_global: int, segment_ids=None, key_padding_mask=None,
                           scale=None):
    """Sliding-window + global-token attention. q, k, v: [B, H, N, D]; segment_ids: [N] (local
    windows never cross a segment, e.g. a chromosome); key_padding_mask: [B, N]."""
    scale = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    allowed = local_global_mask(q.shape[2], window, n_global, segment_ids, q.device)[None, None]
    if key_padding_mask is not None:
        allowed = allowed & key_padding_mask[:, None, None, :].bool()
    scores = (q @ k.transpose(-1, -2)) * scale
    return _masked_softmax_av(scores, allowed, v)


def graph_attention(h, a_src, a_dst, indptr, indices, edge_attr=None, w_edge=None, negative_slope=0.2):
    """GAT attention over a CSR graph (PyG ``GATConv`` semantics, before bias and head concat).

    Shapes::

        h        [N, H, D]   projected node features W x (values)
        a_src    [N, H]      <att_src, W x_j>   per source node
        a_dst    [N, H]      <att_dst, W x_i>   per destination node
        indptr   [N + 1]     CSR by destination: in-edges of node i are indices[indptr[i]:indptr[i+1]]
        indices  [E]         source node j of each edge
        edge_attr [E, F]     edge features (optional)
        w_edge   [F, H]      folded edge projection: W_e^T att_edge per head (optional)
        returns  [N, H, D]   out_i = sum_j softmax_j(LeakyReLU(a_src[j] + a_dst[i] + e_ij @ w_edge)) h_j

    A node without in-edges gets zeros.
    """
    N = h.shape[0]
    deg = indptr[1:] - indptr[:-1]
    dst = torch.repeat_interleave(torch.arange(N, device=h.device), deg)
    logits = a_src[indices] + a_dst[dst]
    if edge_attr is not None:
        logits = logits + edge_attr.to(h.dtype) @ w_edge.to(h.dtype)
    logits = torch.nn.functional.leaky_relu(logits, negative_slope)
    dense = torch.full((N, N, h.shape[1]), neg_for(h.dtype), dtype=h.dtype, device=h.device)
    dense[dst, indices] = logits
    allowed = torch.zeros(N, N, dtype=torch.bool, device=h.device)
    allowed[dst, indices] = True
    p = torch.softmax(dense, dim=1) * allowed[..., None].to(h.dtype)
    return torch.einsum("ijh,jhd->ihd", p, h)
