"""Triton graph attention (GAT) over a CSR graph by destination, with edge features.

    out_i = sum_{j -> i} softmax_j(LeakyReLU(a_src[j] + a_dst[i] + e_ij . w_edge)) h_j

Forward: one program per destination node walks its in-edges in chunks of BLOCK_E with an online
softmax (base 2) for all heads at once, gathering the rows ``h[src]`` ([BLOCK_E, H, D]) into fp32
registers; no ``[E, H, D]`` tensor exists anywhere. The per-edge bias ``edge_attr @ w_edge`` ([E, H])
is one torch matmul (autograd gives the w_edge / edge_attr gradients).

Backward (deterministic, no atomics):
1. per destination node: recompute p, ``dz = p (dO_i . h_j - delta_i) * LeakyReLU'(z)``, store
   ``dz`` and ``p`` per edge and head ([E, H]), reduce d a_dst;
2. per source node over its out-edges (the CSR transposed by source): ``dh_j = sum p dO_i`` and
   ``d a_src_j = sum dz``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from genoattn.kernels.triton import configs

NEG = -1.0e30
LOG2E = 1.4426950408889634
K_NEG = tl.constexpr(NEG)  # globals read inside @jit kernels must be constexpr
K_LOG2E = tl.constexpr(LOG2E)


@triton.autotune(configs=configs.graph_configs(), key=["BLOCK_H", "BLOCK_D", "HAS_EB"])
@triton.jit
def _gat_fwd(Hf, ASRC, ADST, EB, INDPTR, INDICES, O, LSE,
             NH, D, slope,
             HAS_EB: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr):
    i = tl.program_id(0)
    e0 = tl.load(INDPTR + i)
    e1 = tl.load(INDPTR + i + 1)
    offs_h = tl.arange(0, BLOCK_H)
    offs_d = tl.arange(0, BLOCK_D)
    h_valid = offs_h < NH
    d_valid = offs_d < D
    adst = tl.load(ADST + i * NH + offs_h, mask=h_valid, other=0.0).to(tl.float32)
    m = tl.full([BLOCK_H], K_NEG, tl.float32)
    l = tl.zeros([BLOCK_H], tl.float32)
    acc = tl.zeros([BLOCK_H, BLOCK_D], tl.float32)
    for e in range(e0, e1, BLOCK_E):
        offs_e = e + tl.arange(0, BLOCK_E)
        e_valid = offs_e < e1
        src = tl.load(INDICES + offs_e, mask=e_valid, other=0).to(tl.int64)
        eh = e_valid[:, None] & h_valid[None, :]
        z = tl.load(ASRC + src[:, None] * NH + offs_h[None, :], mask=eh, other=0.0).to(tl.float32) + adst[None, :]
        if HAS_EB:
            z += tl.load(EB + offs_e[:, None] * NH + offs_h[None, :], mask=eh, other=0.0).to(tl.float32)
        z = tl.where(z > 0, z, z * slope) * K_LOG2E
        z = tl.where(eh, z, K_NEG)
        m_new = tl.maximum(m, tl.max(z, 0))
        p = tl.where(eh, tl.exp2(z - m_new[None, :]), 0.0)
        alpha = tl.exp2(m - m_new)
        l = l * alpha + tl.sum(p, 0)
        hv = tl.load(Hf + src[:, None, None] * (NH * D) + offs_h[None, :, None] * D + offs_d[None, None, :],
                     mask=eh[:, :, None] & d_valid[None, None, :], other=0.0).to(tl.float32)
        acc = acc * alpha[:, None] + tl.sum(p[:, :, None] * hv, 0)
        m = m_new
    has = l > 0.0
    l_safe = tl.where(has, l, 1.0)
    out = acc / l_safe[:, None]
    hd = h_valid[:, None] & d_valid[None, :]
    tl.store(O + i * (NH * D) + offs_h[:, None] * D + offs_d[None, :], out.to(O.dtype.element_ty), mask=hd)
    tl.store(LSE + i * NH + offs_h, tl.where(has, m + tl.log2(l_safe), -K_NEG), mask=h_valid)


@triton.autotune(configs=configs.graph_configs(), key=["BLOCK_H", "BLOCK_D", "HAS_EB"])
@triton.jit
def _gat_bwd_dst(Hf, ASRC, ADST, EB, INDPTR, INDICES, DO, LSE, DELTA, DZ, P, DADST,
                 NH, D, slope,
                 HAS_EB: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr):
    i = tl.program_id(0)
    e0 = tl.load(INDPTR + i)
    e1 = tl.load(INDPTR + i + 1)
    offs_h = tl.arange(0, BLOCK_H)
    offs_d = tl.arange(0, BLOCK_D)
    h_valid = offs_h < NH
    d_valid = offs_d < D
    hd = h_valid[:, None] & d_valid[None, :]
    adst = tl.load(ADST + i * NH + offs_h, mask=h_valid, other=0.0).to(tl.float32)
    lse = tl.load(LSE + i * NH + offs_h, mask=h_valid, other=-K_NEG)
    delta = tl.load(DELTA + i * NH + offs_h, mask=h_valid, other=0.0)
    do = tl.load(DO + i * (NH * D) + offs_h[:, None] * D + offs_d[None, :], mask=hd, other=0.0).to(tl.float32)
    da = tl.zeros([BLOCK_H], tl.float32)
    for e in range(e0, e1, BLOCK_E):
        offs_e = e + tl.arange(0, BLOCK_E)
        e_valid = offs_e < e1
        src = tl.load(INDICES + offs_e, mask=e_valid, other=0).to(tl.int64)
        eh = e_valid[:, None] & h_valid[None, :]
        z = tl.load(ASRC + src[:, None] * NH + offs_h[None, :], mask=eh, other=0.0).to(tl.float32) + adst[None, :]
        if HAS_EB:
            z += tl.load(EB + offs_e[:, None] * NH + offs_h[None, :], mask=eh, other=0.0).to(tl.float32)
        zl = tl.where(z > 0, z, z * slope) * K_LOG2E
        p = tl.where(eh, tl.exp2(zl - lse[None, :]), 0.0)
        hv = tl.load(Hf + src[:, None, None] * (NH * D) + offs_h[None, :, None] * D + offs_d[None, None, :],
                     mask=eh[:, :, None] & d_valid[None, None, :], other=0.0).to(tl.float32)
        dp = tl.sum(hv * do[None, :, :], 2)
        dz = p * (dp - delta[None, :])
        dz = tl.where(z > 0, dz, dz * slope)
        tl.store(DZ + offs_e[:, None] * NH + offs_h[None, :], dz, mask=eh)
        tl.store(P + offs_e[:, None] * NH + offs_h[None, :], p, mask=eh)
        da += tl.sum(dz, 0)
    tl.store(DADST + i * NH + offs_h, da, mask=h_valid)


@triton.autotune(configs=configs.graph_configs(), key=["BLOCK_H", "BLOCK_D"])
@triton.jit
def _gat_bwd_src(CPTR, CPERM, CDST, DO, DZ, P, DH, DASRC,
                 NH, D,
                 BLOCK_E: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr):
    j = tl.program_id(0)
    c0 = tl.load(CPTR + j)
    c1 = tl.load(CPTR + j + 1)
    offs_h = tl.arange(0, BLOCK_H)
    offs_d = tl.arange(0, BLOCK_D)
    h_valid = offs_h < NH
    d_valid = offs_d < D
    acc = tl.zeros([BLOCK_H, BLOCK_D], tl.float32)
    da = tl.zeros([BLOCK_H], tl.float32)
    for c in range(c0, c1, BLOCK_E):
        offs_c = c + tl.arange(0, BLOCK_E)
        c_valid = offs_c < c1
        eid = tl.load(CPERM + offs_c, mask=c_valid, other=0).to(tl.int64)
        dst = tl.load(CDST + offs_c, mask=c_valid, other=0).to(tl.int64)
        eh = c_valid[:, None] & h_valid[None, :]
        p = tl.load(P + eid[:, None] * NH + offs_h[None, :], mask=eh, other=0.0)
        dz = tl.load(DZ + eid[:, None] * NH + offs_h[None, :], mask=eh, other=0.0)
        do = tl.load(DO + dst[:, None, None] * (NH * D) + offs_h[None, :, None] * D + offs_d[None, None, :],
                     mask=eh[:, :, None] & d_valid[None, None, :], other=0.0).to(tl.float32)
        acc += tl.sum(p[:, :, None] * do, 0)
        da += tl.sum(dz, 0)
    hd = h_valid[:, None] & d_valid[None, :]
    tl.store(DH + j * (NH * D) + offs_h[:, None] * D + offs_d[None, :], acc.to(DH.dtype.element_ty), mask=hd)
    tl.store(DASRC + j * NH + offs_h, da, mask=h_valid)


def _pow2(x: int) -> int:
    return 1 << max(0, (int(x) - 1).bit_length())


class GraphAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, a_src, a_dst, ebias, indptr, indices, slope):
        N, NH, D = h.shape
        h = h.contiguous()
        a_src = a_src.contiguous()
        a_dst = a_dst.contiguous()
        eb = ebias.contiguous() if ebias is not None else torch.zeros(1, device=h.device, dtype=h.dtype)
        out = torch.empty_like(h)
        lse = torch.empty(N, NH, dtype=torch.float32, device=h.device)
        meta = dict(BLOCK_H=_pow2(NH), BLOCK_D=max(2, _pow2(D)))  # BLOCK_E: autotuned
        if N > 0:
            _gat_fwd[(N,)](h, a_src, a_dst, eb, indptr, indices, out, lse, NH, D, float(slope),
                           HAS_EB=ebias is not None, **meta)
        ctx.save_for_backward(h, a_src, a_dst, eb, indptr, indices, out, lse)
        ctx.has_eb = ebias is not None
        ctx.slope = float(slope)
        ctx.meta = meta
        return out

    @staticmethod
    def backward(ctx, dout):
        h, a_src, a_dst, eb, indptr, indices, out, lse = ctx.saved_tensors
        N, NH, D = h.shape
        E = indices.numel()
        dout = dout.contiguous()
        delta = (dout.float() * out.float()).sum(-1).contiguous()
        dz = torch.zeros(E, NH, dtype=torch.float32, device=h.device)
        p = torch.zeros(E, NH, dtype=torch.float32, device=h.device)
        da_dst = torch.zeros(N, NH, dtype=torch.float32, device=h.device)
        da_src = torch.zeros(N, NH, dtype=torch.float32, device=h.device)
        dh = torch.zeros_like(h)
        if N > 0 and E > 0:
            _gat_bwd_dst[(N,)](h, a_src, a_dst, eb, indptr, indices, dout, lse, delta, dz, p, da_dst,
                               NH, D, ctx.slope, HAS_EB=ctx.has_eb, **ctx.meta)
            # CSR by destination -> by source (stable: edges of a source in destination order)
            cperm = torch.argsort(indices, stable=True)
            counts = torch.bincount(indices, minlength=N)
            cptr = torch.zeros(N + 1, dtype=torch.int64, device=h.device)
            cptr[1:] = torch.cumsum(counts, 0)
            dst = torch.repeat_interleave(torch.arange(N, device=h.device), indptr[1:] - indptr[:-1])
            cdst = dst[cperm].contiguous()
            _gat_bwd_src[(N,)](cptr, cperm, cdst, dout, dz, p, dh, da_src, NH, D, **ctx.meta)
        deb = dz.to(eb.dtype) if ctx.has_eb else None
        return dh, da_src.to(a_src.dtype), da_dst.to(a_dst.dtype), deb, None, None, None


def graph_attention(h, a_src, a_dst, indptr, indices, edge_attr=None, w_edge=None, negative_slope=0.2):
    """h [N, H, D]; a_src, a_dst [N, H]; CSR by destination (indptr [N+1], indices [E] = sources);
    edge_attr [E, F]; w_edge [F, H]. Returns [N, H, D]."""
    indptr = indptr.to(h.device, torch.int64).contiguous()
    indices = indices.to(h.device, torch.int64).contiguous()
    ebias = None
    if edge_attr is not None:
        if w_edge is None:
            raise ValueError("graph_attention: edge_attr given without w_edge")
        ebias = edge_attr.to(h.dtype) @ w_edge.to(h.dtype)
    return GraphAttention.apply(h, a_src, a_dst, ebias, indptr, indices, float(negative_slope))
