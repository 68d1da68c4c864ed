"""Cross-checks against peers with the same inputs/weights.

* dense vs torch.nn.functional.scaled_dot_product_attention;
* block-sparse and local-global vs torch FlexAttention (eager on the CPU: small sizes only; the
  compiled CPU FlexAttention takes ~50 s to build per shape, so tests use eager mode, which
  computes the same masked softmax);
* graph attention vs torch_geometric GATConv(in, out, heads, edge_dim, negative_slope=0.2,
  add_self_loops=False, concat=True), its weights folded into h, a_src, a_dst, w_edge.
"""

from __future__ import annotations

import functools
import os
import warnings

import pytest
import torch
import torch.nn.functional as F

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

from kernel_cases import padding_mask, qkv, random_graph, random_layout, rng

from genoattn.kernels import cpu
from genoattn.kernels.triton import block_sparse as tbs
from genoattn.kernels.triton import dense as tdense
from genoattn.kernels.triton import graph as tgraph
from genoattn.kernels.triton import local_global as tlg

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BACKENDS = ["cpu", "triton"]


def flex(q, k, v, mask_mod, B, N, block=16):
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    bm = create_block_mask(mask_mod, B, None, N, N, device=q.device, BLOCK_SIZE=block)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return flex_attention(q, k, v, block_mask=bm)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dense_vs_sdpa(backend):
    g = rng()
    B, H, L, D = 2, 4, 53, 16
    q, k, v = qkv(B, H, L, D, g)
    kpm = padding_mask(B, L, g, empty_row=False)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=kpm[:, None, None, :])
    fn = cpu.dense_attention if backend == "cpu" else tdense.attention
    got = fn(q, k, v, kpm)
    assert (got - want).abs().max() < 2e-5


@pytest.mark.parametrize("backend", BACKENDS)
def test_block_sparse_vs_flex(backend):
    g = rng()
    B, H, N, D, bs = 2, 2, 16 * 5 + 3, 16, 16
    q, k, v = qkv(B, H, N, D, g)
    layout = random_layout(N, bs, g)
    nb = layout.n_blocks
    block = torch.zeros(nb, nb, dtype=torch.bool)
    rows = torch.repeat_interleave(torch.arange(nb), layout.indptr[1:] - layout.indptr[:-1])
    block[rows, layout.indices] = True
    tok = padding_mask(B, N, g, empty_row=False)

    def mask_mod(b, h, qi, ki):
        return block[qi // bs, ki // bs] & tok[b, ki]

    want = flex(q, k, v, mask_mod, B, N)
    fn = cpu.block_sparse_attention if backend == "cpu" else tbs.block_sparse_attention
    got = fn(q, k, v, layout, tok)
    assert (got - want).abs().max() < 2e-5


@pytest.mark.parametrize("backend", BACKENDS)
def test_local_global_vs_flex(backend):
    g = rng()
    B, H, N, D, w, ng = 2, 2, 75, 16, 10, 4
    q, k, v = qkv(B, H, N, D, g)
    seg = torch.tensor([0] * 40 + [1] * 35)
    kpm = padding_mask(B, N, g, empty_row=False)

    def mask_mod(b, h, qi, ki):
        local = ((qi - ki).abs() <= w // 2) & (seg[qi] == seg[ki])
        return (local | (qi < ng) | (ki < ng)) & kpm[b, ki]

    want = flex(q, k, v, mask_mod, B, N)
    fn = functools.partial(cpu.local_global_attention, block_q=16) if backend == "cpu" else tlg.local_global_attention
    got = fn(q, k, v, w, ng, seg, kpm)
    assert (got - want).abs().max() < 2e-5


def fold_gatconv(conv, x, edge_attr):
    """GATConv weights -> (h, a_src, a_dst, w_edge) of genoattn.kernels.graph_attention."""
    H, C = conv.heads, conv.out_channels
    lin = conv.lin if getattr(conv, "lin", None) is not None else conv.lin_src
    h = lin(x).view(-1, H, C)
    a_src = (h * conv.att_src.view(1, H, C)).sum(-1)
    a_dst = (h * conv.att_dst.view(1, H, C)).sum(-1)
    we = conv.lin_edge.weight.view(H, C, -1)  # [H*C, F] -> [H, C, F]
    w_edge = torch.einsum("hcf,hc->fh", we, conv.att_edge.view(H, C))
    return h, a_src, a_dst, w_edge


@pytest.mark.parametrize("backend", BACKENDS)
def test_graph_vs_gatconv(backend):
    pyg = pytest.importorskip("torch_geometric.nn")
    g = rng()
    N, Fin, H, C, Fe = 31, 12, 4, 16, 6
    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
    conv = pyg.GATConv(Fin, C, heads=H, edge_dim=Fe, negative_slope=0.2, add_self_loops=False, concat=True)
    x = torch.randn(N, Fin, generator=g)
    indptr, src, dst = random_graph(N, 5, g, isolated=(2,))
    edge_attr = torch.randn(src.numel(), Fe, generator=g)
    edge_index = torch.stack([src, dst])  # PyG: [2, E] source -> target, softmax over a target's in-edges
    want = conv(x, edge_index, edge_attr=edge_attr)  # [N, H*C] incl. bias
    h, a_src, a_dst, w_edge = fold_gatconv(conv, x, edge_attr)
    fn = cpu.graph_attention if backend == "cpu" else tgraph.graph_attention
    got = fn(h, a_src, a_dst, indptr, src, edge_attr, w_edge, 0.2).reshape(N, H * C) + conv.bias
    assert (got - want).abs().max() < 2e-5
    # gradients w.r.t. the GATConv parameters agree too
    go = torch.randn_like(want)
    gw = torch.autograd.grad(want, list(conv.parameters()), go)
    h, a_src, a_dst, w_edge = fold_gatconv(conv, x, edge_attr)
    got = fn(h, a_src, a_dst, indptr, src, edge_attr, w_edge, 0.2).reshape(N, H * C) + conv.bias
    gg = torch.autograd.grad(got, list(conv.parameters()), go)
    for a, b in zip(gg, gw):
        assert (a - b).abs().max() < 1e-4
