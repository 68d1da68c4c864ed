"""Attention kernels behind one call per pattern.

Each pattern has a reference (``reference.py``, the spec), a CPU path (``cpu.py``) and a Triton
path (``triton/``); :mod:`genoattn.kernels.dispatch` picks one. Function contracts (shapes,
masks, the zero output of a query without allowed keys) are documented in ``reference.py``.

Patterns: dense (+ key padding), varlen (packed ``cu_seqlens``), block-sparse (``BlockLayout``),
local-global, graph attention on CSR.
"""

from __future__ import annotations

from genoattn.kernels import cpu, reference
from genoattn.kernels.dispatch import BACKENDS, attention_dtype, resolve, set_attention_dtype, set_default_backend
from genoattn.kernels.layouts import BlockLayout

__all__ = ["attention", "varlen_attention", "block_sparse_attention", "local_global_attention",
           "graph_attention", "BlockLayout", "BACKENDS", "set_default_backend", "set_attention_dtype", "resolve"]


def _in_attention_dtype(fn, *xs):
    """Call the Triton path ``fn(*xs)`` with the floating inputs cast to the attention dtype
    (kernels.attention_dtype) and the output cast back to the first input's dtype."""
    want = attention_dtype(xs[0])
    if want is None:
        return fn(*xs)
    cast = [x.to(want) if hasattr(x, "is_floating_point") and x.is_floating_point() else x for x in xs]
    return fn(*cast).to(xs[0].dtype)


def attention(q, k, v, key_padding_mask=None, scale=None, backend=None):
    """Dense bidirectional attention. q, k, v: [B, H, L, D]; key_padding_mask [B, L] (True = real)."""
    which = resolve(backend, q.device)
    if which == "reference":
        return reference.dense_attention(q, k, v, key_padding_mask, scale)
    if which == "triton":
        from genoattn.kernels.triton import dense as tdense
        return _in_attention_dtype(lambda q, k, v: tdense.attention(q, k, v, key_padding_mask, scale), q, k, v)
    return cpu.dense_attention(q, k, v, key_padding_mask, scale)


def varlen_attention(q, k, v, cu_seqlens, max_seqlen=None, scale=None, backend=None):
    """Packed sequences. q, k, v: [T, H, D]; cu_seqlens [S+1]. Returns [T, H, D]."""
    which = resolve(backend, q.device)
    if which == "triton":
        from genoattn.kernels.triton import dense as tdense
        return _in_attention_dtype(lambda q, k, v: tdense.varlen_attention(q, k, v, cu_seqlens, max_seqlen, scale),
                                   q, k, v)
    if which == "cpu" and hasattr(cpu, "varlen_attention"):
        return cpu.varlen_attention(q, k, v, cu_seqlens, max_seqlen, scale)
    return reference.varlen_attention(q, k, v, cu_seqlens, scale)


def block_sparse_attention(q, k, v, layout: BlockLayout, token_mask=None, scale=None, backend=None):
    """q, k, v: [B, H, N, D]; layout: BlockLayout; token_mask [B, N]."""
    which = resolve(backend, q.device)
    if which == "triton":
        from genoattn.kernels.triton import block_sparse as tbs
        return _in_attention_dtype(lambda q, k, v: tbs.block_sparse_attention(q, k, v, layout, token_mask, scale),
                                   q, k, v)
    if which == "cpu" and hasattr(cpu, "block_sparse_attention"):
        return cpu.block_sparse_attention(q, k, v, layout, token_mask, scale)
    return reference.block_sparse_attention(q, k, v, layout, token_mask, scale)


def local_global_attention(q, k, v, window: int, n_global: int, segment_ids=None, key_padding_mask=None,
                           scale=None, backend=None):
    """q, k, v: [B, H, N, D]; first ``n_global`` tokens global; |i-j| <= window//2 locally."""
    which = resolve(backend, q.device)
    if which == "triton":
        from genoattn.kernels.triton import local_global as tlg
        return _in_attention_dtype(lambda q, k, v: tlg.local_global_attention(q, k, v, window, n_global, segment_ids,
                                                                              key_padding_mask, scale), q, k, v)
    if which == "cpu" and hasattr(cpu, "local_global_attention"):
        return cpu.local_global_attention(q, k, v, window, n_global, segment_ids, key_padding_mask, scale)
    return reference.local_global_attention(q, k, v, window, n_global, segment_ids, key_padding_mask, scale)


def graph_attention(h, a_src, a_dst, indptr, indices, edge_attr=None, w_edge=None, negative_slope=0.2,
                    backend=None):
    """GAT over CSR (by destination). h [N, H, D]; a_src, a_dst [N, H]; edge_attr [E, F]; w_edge [F, H]."""
    which = resolve(backend, h.device)
    if which == "triton":
        from genoattn.kernels.triton import graph as tgraph
        return _in_attention_dtype(
            lambda h, a_src, a_dst, edge_attr, w_edge: tgraph.graph_attention(h, a_src, a_dst, indptr, indices,
                                                                              edge_attr, w_edge, negative_slope),
            h, a_src, a_dst, edge_attr, w_edge)
    if which == "cpu" and hasattr(cpu, "graph_attention"):
        return cpu.graph_attention(h, a_src, a_dst, indptr, indices, edge_attr, w_edge, negative_slope)
    return reference.graph_attention(h, a_src, a_dst, indptr, indices, edge_attr, w_edge, negative_slope)
