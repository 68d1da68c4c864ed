"""CPU paths and Triton kernels (TRITON_INTERPRET=1 on a machine without GPU) against the reference.

Forward and gradients, checked three ways (see kernel_cases.three_way), head_dim 16 and 32, lengths
that are not multiples of the block size, padding, rows without any allowed key, nodes without
in-edges, fresh random inputs each run.
"""

from __future__ import annotations

import functools
import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"  # before any triton kernel module is imported

from kernel_cases import (cu_seqlens, gat_inputs, golden, padding_mask, qkv, random_graph, random_layout, rng,
                          three_way)

from genoattn.kernels import cpu

triton = pytest.importorskip("triton")
from genoattn.kernels.triton import block_sparse as tbs  # noqa: E402
from genoattn.kernels.triton import dense as tdense  # noqa: E402
from genoattn.kernels.triton import graph as tgraph  # noqa: E402
from genoattn.kernels.triton import local_global as tlg  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BACKENDS = ["cpu", "triton"]
DTYPES = [torch.float32, torch.bfloat16, torch.float16]  # fp16: the tensor-core path of the kernels
DIMS = [16, 32]

DENSE = {"cpu": cpu.dense_attention, "triton": tdense.attention}
VARLEN = {"cpu": cpu.varlen_attention, "triton": tdense.varlen_attention}
BSPARSE = {"cpu": functools.partial(cpu.block_sparse_attention, chunk_bytes=20_000),
           "triton": tbs.block_sparse_attention}
LOCALG = {"cpu": functools.partial(cpu.local_global_attention, block_q=8, chunk_bytes=30_000),
          "triton": tlg.local_global_attention}
GRAPH = {"cpu": functools.partial(cpu.graph_attention, chunk_edges=16), "triton": tgraph.graph_attention}

params = pytest.mark.parametrize("backend,dtype,D", [(b, t, d) for b in BACKENDS for t in DTYPES for d in DIMS])


@params
def test_dense_padding(backend, dtype, D):
    g = rng()
    B, H, L = 3, 2, 37  # 37: not a multiple of any block size
    q, k, v = qkv(B, H, L, D, g)
    kpm = padding_mask(B, L, g).to(DEVICE)
    out, _ = three_way(lambda q, k, v: DENSE[backend](q, k, v, kpm),
                       lambda q, k, v: golden.dense_attention(q, k, v, kpm), [q, k, v], dtype, DEVICE)
    assert out[-1].abs().max() == 0  # the batch element without any real key gives zeros


@params
def test_dense_no_mask_scale(backend, dtype, D):
    g = rng()
    q, k, v = qkv(2, 3, 21, D, g)
    three_way(lambda q, k, v: DENSE[backend](q, k, v, None, 0.3),
              lambda q, k, v: golden.dense_attention(q, k, v, None, 0.3), [q, k, v], dtype, DEVICE)


@params
def test_varlen(backend, dtype, D):
    g = rng()
    lengths = [7, 0, 23, 7, 1, int(torch.randint(2, 40, (1,), generator=g)), 23] + [5] * 5  # 5 x 5: one grouped call
    cu = cu_seqlens(lengths).to(DEVICE)
    T, H = sum(lengths), 2
    q, k, v = (torch.randn(T, H, D, generator=g) for _ in range(3))
    three_way(lambda q, k, v: VARLEN[backend](q, k, v, cu),
              lambda q, k, v: golden.varlen_attention(q, k, v, cu), [q, k, v], dtype, DEVICE)


@params
@pytest.mark.parametrize("block", [16, 32])
def test_block_sparse(backend, dtype, D, block):
    g = rng()
    B, H, N = 2, 2, 3 * block + 5
    q, k, v = qkv(B, H, N, D, g)
    layout = random_layout(N, block, g).to(DEVICE)
    tok = padding_mask(B, N, g, empty_row=False).to(DEVICE)
    out, _ = three_way(lambda q, k, v: BSPARSE[backend](q, k, v, layout, tok),
                       lambda q, k, v: golden.block_sparse_attention(q, k, v, layout, tok), [q, k, v], dtype, DEVICE)
    assert out[:, :, block:2 * block].abs().max() == 0  # query block 1 lists no key block


@params
def test_local_global(backend, dtype, D):
    g = rng()
    B, H, N = 2, 2, 45
    q, k, v = qkv(B, H, N, D, g)
    seg = torch.tensor([0] * 20 + [1] * 25, device=DEVICE)
    kpm = padding_mask(B, N, g, empty_row=False).to(DEVICE)
    kpm[1, :] = False
    kpm[1, 30:33] = True  # batch 1: most queries see no key at all
    out, _ = three_way(lambda q, k, v: LOCALG[backend](q, k, v, 6, 3, seg, kpm),
                       lambda q, k, v: golden.local_global_attention(q, k, v, 6, 3, seg, kpm), [q, k, v], dtype,
                       DEVICE)
    assert out[1, :, 5:20].abs().max() == 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("window,n_global", [(7, 0), (4, 20), (200, 2)])
def test_local_global_shapes(backend, window, n_global):
    g = rng()
    q, k, v = qkv(1, 2, 41, 16, g)
    three_way(lambda q, k, v: LOCALG[backend](q, k, v, window, n_global),
              lambda q, k, v: golden.local_global_attention(q, k, v, window, n_global), [q, k, v], torch.float32,
              DEVICE)


@params
def test_graph(backend, dtype, D):
    g = rng()
    N, H, F = 29, 3, 5
    indptr, src, _ = random_graph(N, 4, g, isolated=(3, 17))
    indptr, src = indptr.to(DEVICE), src.to(DEVICE)
    ins = gat_inputs(N, src.numel(), H, D, F, g)
    out, _ = three_way(lambda h, a, b, e, w: GRAPH[backend](h, a, b, indptr, src, e, w),
                       lambda h, a, b, e, w: golden.graph_attention(h, a, b, indptr, src, e, w), ins, dtype, DEVICE)
    assert out[3].abs().max() == 0 and out[17].abs().max() == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_graph_without_edge_features(backend):
    g = rng()
    N, H, D = 23, 2, 16
    indptr, src, _ = random_graph(N, 3, g)
    ins = gat_inputs(N, src.numel(), H, D, 4, g)[:3]
    three_way(lambda h, a, b: GRAPH[backend](h, a, b, indptr, src, negative_slope=0.1),
              lambda h, a, b: golden.graph_attention(h, a, b, indptr, src, negative_slope=0.1), ins, torch.float32,
              DEVICE)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_rows_get_zero_gradient(backend):
    g = rng()
    q, k, v = (x.requires_grad_() for x in qkv(2, 2, 19, 16, g))
    kpm = torch.ones(2, 19, dtype=torch.bool)
    kpm[1] = False
    out = DENSE[backend](q, k, v, kpm)
    out.sum().backward()
    for x in (q, k, v):
        assert torch.isfinite(x.grad).all()
        assert x.grad[1].abs().max() == 0


def test_dispatch_override(monkeypatch):
    from genoattn import kernels
    g = rng()
    q, k, v = qkv(1, 2, 17, 16, g)
    want = golden.dense_attention(q, k, v)
    for name in ("cpu", "reference", "triton"):
        assert torch.allclose(kernels.attention(q, k, v, backend=name), want, atol=1e-5)
    monkeypatch.setenv("GENOATTN_KERNEL_BACKEND", "nonsense")
    with pytest.raises(ValueError, match="GENOATTN_KERNEL_BACKEND"):
        kernels.attention(q, k, v)


@pytest.mark.parametrize("block", [48, 8])
def test_triton_block_sparse_odd_block_sizes(block):
    """48 refines exactly to kernel blocks of 16; 8 has no divisor >= 16 and falls back (with a warning)."""
    g = rng()
    N = 2 * block + 7
    q, k, v = qkv(1, 2, N, 16, g)
    layout = random_layout(N, block, g)
    want = golden.block_sparse_attention(q.double(), k.double(), v.double(), layout)
    if block == 8:
        with pytest.warns(UserWarning, match="falls back|torch path"):
            got = tbs.block_sparse_attention(q, k, v, layout)
    else:
        got = tbs.block_sparse_attention(q, k, v, layout)
    assert (got.double() - want).abs().max() < 1e-5


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_graph_head_groups_and_long_rows(backend, dtype):
    """20 heads (the Triton kernel's two groups of 16, the second mostly empty) and in-degrees of
    ~40 (several chunks of its online softmax), against the float64 reference."""
    g = rng()
    N, H, D, F = 60, 20, 16, 6
    indptr, src, _ = random_graph(N, 40, g, isolated=(7,))
    assert int((indptr[1:] - indptr[:-1]).max()) > 32
    indptr, src = indptr.to(DEVICE), src.to(DEVICE)
    ins = gat_inputs(N, src.numel(), H, D, F, g)
    out, _ = three_way(lambda h, a, b, e, w: GRAPH[backend](h, a, b, indptr, src, e, w),
                       lambda h, a, b, e, w: golden.graph_attention(h, a, b, indptr, src, e, w), ins, dtype, DEVICE)
    assert out[7].abs().max() == 0


@pytest.mark.parametrize("name,tol", [("float16", 5e-3), ("bfloat16", 3e-2)])
def test_attention_dtype_casts_in_and_back(name, tol, monkeypatch):
    """kernels.attention_dtype: float32 inputs run through the Triton kernels in fp16/bf16 and come
    back float32, within that dtype's error of the float64 golden; gradients reach the fp32 inputs.
    'auto' leaves CPU tensors alone (it picks bfloat16 for float32 on CUDA only)."""
    from genoattn import kernels
    from genoattn.kernels import dispatch

    assert dispatch.attention_dtype(torch.zeros(1)) is None
    monkeypatch.setattr(dispatch, "_attention_dtype", name)
    assert dispatch.attention_dtype(torch.zeros(1)) == getattr(torch, name)
    g = rng()
    q, k, v = (x.requires_grad_() for x in qkv(2, 2, 37, 16, g))
    kpm = padding_mask(2, 37, g)
    out = kernels.attention(q, k, v, kpm, backend="triton")
    assert out.dtype == torch.float32
    gold = golden.dense_attention(q.double(), k.double(), v.double(), kpm)
    assert (out.double() - gold).abs().max() < tol * gold.abs().max()
    out.sum().backward()
    assert q.grad.dtype == torch.float32 and torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0
    N = 23
    indptr, src, _ = random_graph(N, 3, g)
    h, a, b, e, w = gat_inputs(N, src.numel(), 2, 16, 4, g)
    out = kernels.graph_attention(h, a, b, indptr, src, e, w, backend="triton")
    gold = golden.graph_attention(h.double(), a.double(), b.double(), indptr, src, e.double(), w.double())
    assert out.dtype == torch.float32 and (out.double() - gold).abs().max() < tol * gold.abs().max()


def test_bfloat16_only_where_the_gpu_has_it():
    """auto: bfloat16 from compute capability 8.0 (Ampere, Hopper), float16 on Volta/Turing; bfloat16 asked for
    on an older GPU is an error with the fix."""
    from genoattn.kernels import dispatch

    assert dispatch.cuda_dtype((9, 0)) == torch.bfloat16 and dispatch.cuda_dtype((8, 0)) == torch.bfloat16
    assert dispatch.cuda_dtype((7, 5)) == torch.float16 and dispatch.cuda_dtype((7, 0)) == torch.float16
    dispatch.check_bfloat16((8, 6))
    with pytest.raises(ValueError, match=r"compute capability 7\.5.*attention_dtype: auto"):
        dispatch.check_bfloat16((7, 5))
