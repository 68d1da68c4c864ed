"""Triton graph attention (GAT) over a CSR graph by destination, with edge features.

    out_i = sum_{j -> i} softmax_j(LeakyReLU(a_src[j] + a_dst[i] + e_ij . w_edge)) h_j

Forward: one program per (destination node, group of 16 heads) walks the node's in-edges in chunks
of BLOCK_E with an online softmax (base 2). The weighted sum over a chunk runs on the tensor cores:
the gathered rows ``h[src]`` of the group form a [BLOCK_E, 16 x D] tile and

    R[h', (h, d)] += sum_e p[e, h'] * h[src_e, h, d]         (tl.dot: [16, E] x [E, 16 D])

of which only the diagonal blocks h' = h are wanted; they are read out once per node. That spends
16x the useful multiply-adds on units with ~30x the throughput of the fp32 lanes, and leaves the
lanes the softmax and the bf16 loads. No ``[E, H, D]`` tensor exists anywhere. The per-edge bias
``edge_attr @ w_edge`` ([E, H]) is one torch matmul (autograd gives the w_edge / edge_attr gradients).

Backward (deterministic, no atomics), the same tiles:
1. per destination node: recompute p; ``dp[e, h] = dO_i[h] . h[src_e, h]`` as a tensor-core product
   of the gathered tile with a block-diagonal [16 D, 16] matrix built from dO_i; store
   ``dz = p (dp - delta_i) LeakyReLU'(z)`` and ``p`` per edge and head ([E, H]); reduce d a_dst;
2. per source node over its out-edges (the CSR transposed by source): ``dh_j = sum p dO_dst`` (the
   forward's diagonal-block product over gathered dO rows) and ``d a_src_j = sum dz``.

Dots in the input dtype with fp32 accumulation on a GPU (fp32 for fp32 inputs, and for bf16 under
TRITON_INTERPRET, whose bf16 ``tl.dot`` is wrong). Shapes: h [N, H, D]; a_src, a_dst [N, H];
indptr [N + 1], indices [E] (sources, CSR by destination); ebias [E, H]; out [N, H, D].
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from genoattn.kernels.triton import configs
from genoattn.kernels.triton._tl import K_LOG2E, K_NEG
from genoattn.kernels.triton._tl import dot as _dot
HG = 16  # heads per program: the M side of the tensor-core product (tl.dot needs >= 16)
K_HG = tl.constexpr(HG)


@triton.jit
def _edge_chunk(INDICES, e, e1, h_valid, BLOCK_E: tl.constexpr):
    """Edges [e, e + BLOCK_E) of a CSR row ending at e1: positions, validity, their other ends, and
    the [edge, head] validity."""
    offs_e = e + tl.arange(0, BLOCK_E)
    e_valid = offs_e < e1
    other = tl.load(INDICES + offs_e, mask=e_valid, other=0).to(tl.int64)
    return offs_e, e_valid, other, e_valid[:, None] & h_valid[None, :]


@triton.jit
def _columns(hg, NH, D, BLOCK_D: tl.constexpr):
    """The 16 x BLOCK_D columns of a head group: (head within group, offset in a row of N x H x D, valid)."""
    cols = tl.arange(0, K_HG * BLOCK_D)
    c_h = cols // BLOCK_D
    c_d = cols % BLOCK_D
    head = hg * K_HG + c_h
    return c_h, head * D + c_d, (head < NH) & (c_d < D)


@triton.jit
def _gather(X, rows, r_valid, c_off, c_valid, NH, D, DOT_F32: tl.constexpr):
    """[BLOCK_E, 16 x BLOCK_D] tile of rows ``rows`` of X [N, H, D], the head group's columns."""
    x = tl.load(X + rows[:, None] * (NH * D) + c_off[None, :], mask=r_valid[:, None] & c_valid[None, :], other=0.0)
    if DOT_F32:
        x = x.to(tl.float32)
    return x


@triton.jit
def _diagonal(R, BLOCK_D: tl.constexpr):
    """[16, 16 x BLOCK_D] -> [16, BLOCK_D]: out[h, d] = R[h, h * BLOCK_D + d]."""
    R3 = tl.reshape(R, [K_HG, K_HG, BLOCK_D])
    hh = tl.arange(0, K_HG)
    same = hh[:, None, None] == hh[None, :, None]
    return tl.sum(tl.where(same, R3, 0.0), 0)


@triton.jit
def _logits(ASRC, EB, adst, src, offs_e, eh, offs_h, NH, HAS_EB: tl.constexpr):
    """z = a_src[src] + a_dst[i] (+ e_ij . w_edge) per edge and head, fp32, before the LeakyReLU."""
    z = tl.load(ASRC + src[:, None] * NH + offs_h[None, :], mask=eh, other=0.0).to(tl.float32) + adst[None, :]
    if HAS_EB:
        z += tl.load(EB + offs_e[:, None] * NH + offs_h[None, :], mask=eh, other=0.0).to(tl.float32)
    return z


@triton.autotune(configs=configs.graph_configs(), key=["BLOCK_D", "HAS_EB", "DOT_F32"])
@triton.jit
def _gat_fwd(Hf, ASRC, ADST, EB, INDPTR, INDICES, O, LSE,
             NH, D, slope,
             HAS_EB: tl.constexpr, DOT_F32: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_D: tl.constexpr):
    i = tl.program_id(0)
    hg = tl.program_id(1)
    e0 = tl.load(INDPTR + i)
    e1 = tl.load(INDPTR + i + 1)
    offs_h = hg * K_HG + tl.arange(0, K_HG)
    h_valid = offs_h < NH
    _, c_off, c_valid = _columns(hg, NH, D, BLOCK_D)
    adst = tl.load(ADST + i * NH + offs_h, mask=h_valid, other=0.0).to(tl.float32)
    m = tl.full([K_HG], K_NEG, tl.float32)
    l = tl.zeros([K_HG], tl.float32)
    R = tl.zeros([K_HG, K_HG * BLOCK_D], tl.float32)
    for e in range(e0, e1, BLOCK_E):
        offs_e, e_valid, src, eh = _edge_chunk(INDICES, e, e1, h_valid, BLOCK_E)
        z = _logits(ASRC, EB, adst, src, offs_e, eh, offs_h, NH, HAS_EB)
        z = tl.where(eh, tl.where(z > 0, z, z * slope) * K_LOG2E, K_NEG)
        m_new = tl.maximum(m, tl.max(z, 0))
        p = tl.exp2(z - m_new[None, :])  # masked edges: 0 once a head has met a real edge
        alpha = tl.exp2(m - m_new)
        l = l * alpha + tl.sum(p, 0)
        hv = _gather(Hf, src, e_valid, c_off, c_valid, NH, D, DOT_F32)
        R = R * alpha[:, None] + _dot(tl.trans(p.to(hv.dtype)), hv, DOT_F32)
        m = m_new
    acc = _diagonal(R, BLOCK_D)
    has = l > 0.0
    l_safe = tl.where(has, l, 1.0)
    out = acc / l_safe[:, None]
    offs_d = tl.arange(0, BLOCK_D)
    hd = h_valid[:, None] & (offs_d < D)[None, :]
    tl.store(O + i * (NH * D) + offs_h[:, None] * D + offs_d[None, :], out.to(O.dtype.element_ty), mask=hd)
    tl.store(LSE + i * NH + offs_h, tl.where(has, m + tl.log2(l_safe), -K_NEG), mask=h_valid)


@triton.autotune(configs=configs.graph_configs(), key=["BLOCK_D", "HAS_EB", "DOT_F32"])
@triton.jit
def _gat_bwd_dst(Hf, ASRC, ADST, EB, INDPTR, INDICES, DO, LSE, DELTA, DZ, P, DADST,
                 NH, D, slope,
                 HAS_EB: tl.constexpr, DOT_F32: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_D: tl.constexpr):
    i = tl.program_id(0)
    hg = tl.program_id(1)
    e0 = tl.load(INDPTR + i)
    e1 = tl.load(INDPTR + i + 1)
    offs_h = hg * K_HG + tl.arange(0, K_HG)
    h_valid = offs_h < NH
    c_h, c_off, c_valid = _columns(hg, NH, D, BLOCK_D)
    adst = tl.load(ADST + i * NH + offs_h, mask=h_valid, other=0.0).to(tl.float32)
    lse = tl.load(LSE + i * NH + offs_h, mask=h_valid, other=-K_NEG)
    delta = tl.load(DELTA + i * NH + offs_h, mask=h_valid, other=0.0)
    # block-diagonal [16 D, 16]: column h holds dO_i[h, :] in the rows of head h
    do_cols = tl.load(DO + i * (NH * D) + c_off, mask=c_valid, other=0.0)
    dblk = tl.where(c_h[:, None] == tl.arange(0, K_HG)[None, :], do_cols[:, None], 0.0)
    if DOT_F32:
        dblk = dblk.to(tl.float32)
    else:
        dblk = dblk.to(DO.dtype.element_ty)
    da = tl.zeros([K_HG], tl.float32)
    for e in range(e0, e1, BLOCK_E):
        offs_e, e_valid, src, eh = _edge_chunk(INDICES, e, e1, h_valid, BLOCK_E)
        z = _logits(ASRC, EB, adst, src, offs_e, eh, offs_h, NH, HAS_EB)
        zl = tl.where(z > 0, z, z * slope) * K_LOG2E
        p = tl.where(eh, tl.exp2(zl - lse[None, :]), 0.0)
        hv = _gather(Hf, src, e_valid, c_off, c_valid, NH, D, DOT_F32)
        dp = _dot(hv, dblk, DOT_F32)  # [BLOCK_E, 16]
        dz = p * (dp - delta[None, :])
        dz = tl.where(z > 0, dz, dz * slope)
        tl.store(DZ + offs_e[:, None] * NH + offs_h[None, :], dz, mask=eh)
        tl.store(P + offs_e[:, None] * NH + offs_h[None, :], p, mask=eh)
        da += tl.sum(dz, 0)
    tl.store(DADST + i * NH + offs_h, da, mask=h_valid)


@triton.autotune(configs=configs.graph_configs(), key=["BLOCK_D", "DOT_F32"])
@triton.jit
def _gat_bwd_src(CPTR, CPERM, CDST, DO, DZ, P, DH, DASRC,
                 NH, D,
                 DOT_F32: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_D: tl.constexpr):
    j = tl.program_id(0)
    hg = tl.program_id(1)
    c0 = tl.load(CPTR + j)
    c1 = tl.load(CPTR + j + 1)
    offs_h = hg * K_HG + tl.arange(0, K_HG)
    h_valid = offs_h < NH
    _, c_off, c_valid = _columns(hg, NH, D, BLOCK_D)
    R = tl.zeros([K_HG, K_HG * BLOCK_D], tl.float32)
    da = tl.zeros([K_HG], tl.float32)
    for c in range(c0, c1, BLOCK_E):
        offs_c, c_valid_e, eid, eh = _edge_chunk(CPERM, c, c1, h_valid, BLOCK_E)
        dst = tl.load(CDST + offs_c, mask=c_valid_e, other=0).to(tl.int64)
        p = tl.load(P + eid[:, None] * NH + offs_h[None, :], mask=eh, other=0.0)
        dz = tl.load(DZ + eid[:, None] * NH + offs_h[None, :], mask=eh, other=0.0)
        dog = _gather(DO, dst, c_valid_e, c_off, c_valid, NH, D, DOT_F32)
        R += _dot(tl.trans(p.to(dog.dtype)), dog, DOT_F32)
        da += tl.sum(dz, 0)
    acc = _diagonal(R, BLOCK_D)
    offs_d = tl.arange(0, BLOCK_D)
    hd = h_valid[:, None] & (offs_d < D)[None, :]
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
        # the output in float32: the backward's delta = rowsum(dO * O) must not see O rounded to bf16 (with 8
        # mantissa bits, p (dp - delta) cancels badly); the caller gets it in the inputs' dtype
        out = torch.empty(h.shape, dtype=torch.float32, device=h.device)
        lse = torch.empty(N, NH, dtype=torch.float32, device=h.device)
        meta = dict(BLOCK_D=max(2, _pow2(D)), DOT_F32=configs.dot_in_fp32(h.dtype))  # BLOCK_E: autotuned
        grid = (N, triton.cdiv(NH, HG))
        if N > 0 and NH > 0:
            _gat_fwd[grid](h, a_src, a_dst, eb, indptr, indices, out, lse, NH, D, float(slope),
                           HAS_EB=ebias is not None, **meta)
        ctx.save_for_backward(h, a_src, a_dst, eb, indptr, indices, out, lse)
        ctx.has_eb = ebias is not None
        ctx.slope = float(slope)
        ctx.meta = meta
        return out.to(h.dtype)

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
        if N > 0 and E > 0 and NH > 0:
            grid = (N, triton.cdiv(NH, HG))
            _gat_bwd_dst[grid](h, a_src, a_dst, eb, indptr, indices, dout, lse, delta, dz, p, da_dst,
                               NH, D, ctx.slope, HAS_EB=ctx.has_eb, **ctx.meta)
            # CSR by destination -> by source (stable: edges of a source in destination order)
            cperm = torch.argsort(indices, stable=True)
            counts = torch.bincount(indices, minlength=N)
            cptr = torch.zeros(N + 1, dtype=torch.int64, device=h.device)
            cptr[1:] = torch.cumsum(counts, 0)
            dst = torch.repeat_interleave(torch.arange(N, device=h.device), indptr[1:] - indptr[:-1])
            cdst = dst[cperm].contiguous()
            _gat_bwd_src[grid](cptr, cperm, cdst, dout, dz, p, dh, da_src, NH, D, **ctx.meta)
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
