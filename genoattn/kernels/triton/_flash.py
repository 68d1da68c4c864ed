"""One flash-attention core (forward + backward Triton kernels) shared by the dense, varlen,
block-sparse and local-global patterns.

Every pattern is "square blocks of BLOCK tokens; per query block a list of key blocks (CSR), or
all of them; a token-level predicate inside a block":

* dense:        all key blocks, key padding mask;
* varlen:       packed [T, H, D] seen as [1, H, T, D]; key blocks overlapping the query block's
                sequences; predicate ``seq_id[i] == seq_id[j]``;
* block-sparse: the user's BlockLayout refined to BLOCK; token mask;
* local-global: band blocks + global blocks (all blocks for query blocks holding global tokens);
                predicate ``|i-j| <= w//2 (same segment) or i < g or j < g``, key padding.

Online softmax in base 2 (``exp2``, scores pre-multiplied by ``scale * log2(e)``), fp32
accumulation, a large finite negative for masking, ``p`` forced to 0 where masked so rows with no
allowed key give zeros (``lse`` = +1e30 there, so the backward gives them zero gradient).
The backward recomputes ``p`` from the saved log-sum-exp: one kernel accumulates dK, dV per key
block over the query blocks that list it (the transposed layout), one accumulates dQ per query block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from genoattn.kernels.triton import configs

NEG = -1.0e30
LOG2E = 1.4426950408889634
K_NEG = tl.constexpr(NEG)  # globals read inside @jit kernels must be constexpr
K_LOG2E = tl.constexpr(LOG2E)


# ----------------------------------------------------------------------------- kernels

@triton.jit
def _allowed(offs_m, offs_n, m_valid, n_valid, b, KMASK, SEG, sm_b, half_window, n_global,
             HAS_KMASK: tl.constexpr, HAS_SEG: tl.constexpr, LOCAL: tl.constexpr):
    ok = m_valid[:, None] & n_valid[None, :]
    if HAS_KMASK:
        km = tl.load(KMASK + b * sm_b + offs_n, mask=n_valid, other=0)
        ok = ok & (km != 0)[None, :]
    if HAS_SEG:
        seg_q = tl.load(SEG + offs_m, mask=m_valid, other=-1)
        seg_k = tl.load(SEG + offs_n, mask=n_valid, other=-2)
        same = seg_q[:, None] == seg_k[None, :]
    if LOCAL:
        diff = offs_m[:, None] - offs_n[None, :]
        near = (diff <= half_window) & (diff >= -half_window)
        if HAS_SEG:
            near = near & same
        glob = (offs_m < n_global)[:, None] | (offs_n < n_global)[None, :]
        ok = ok & (near | glob)
    else:
        if HAS_SEG:
            ok = ok & same
    return ok


@triton.autotune(configs=configs.attention_configs(), key=["BLOCK_D", "SPARSE", "LOCAL", "HAS_SEG", "HAS_KMASK"])
@triton.jit
def _fwd_kernel(Q, K, V, O, LSE, KMASK, SEG, BPTR, BIDX,
                sq_b, sq_h, sq_n, sk_b, sk_h, sk_n, sv_b, sv_h, sv_n, so_b, so_h, so_n, sm_b,
                H, N, D, qk_scale, half_window, n_global,
                HAS_KMASK: tl.constexpr, HAS_SEG: tl.constexpr, LOCAL: tl.constexpr, SPARSE: tl.constexpr,
                DOT_F32: tl.constexpr, BLOCK: tl.constexpr, BLOCK_D: tl.constexpr):
    qb = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    hh = bh % H
    offs_m = qb * BLOCK + tl.arange(0, BLOCK)
    offs_d = tl.arange(0, BLOCK_D)
    m_valid = offs_m < N
    d_valid = offs_d < D
    q = tl.load(Q + b * sq_b + hh * sq_h + offs_m[:, None] * sq_n + offs_d[None, :],
                mask=m_valid[:, None] & d_valid[None, :], other=0.0)
    if DOT_F32:
        q = q.to(tl.float32)
    m_i = tl.full([BLOCK], K_NEG, tl.float32)
    l_i = tl.zeros([BLOCK], tl.float32)
    acc = tl.zeros([BLOCK, BLOCK_D], tl.float32)
    if SPARSE:
        lo = tl.load(BPTR + qb)
        hi = tl.load(BPTR + qb + 1)
    else:
        lo = 0
        hi = tl.cdiv(N, BLOCK)
    for it in range(lo, hi):
        if SPARSE:
            kb = tl.load(BIDX + it)
        else:
            kb = it
        offs_n = kb * BLOCK + tl.arange(0, BLOCK)
        n_valid = offs_n < N
        kv_mask = n_valid[:, None] & d_valid[None, :]
        k = tl.load(K + b * sk_b + hh * sk_h + offs_n[:, None] * sk_n + offs_d[None, :], mask=kv_mask, other=0.0)
        v = tl.load(V + b * sv_b + hh * sv_h + offs_n[:, None] * sv_n + offs_d[None, :], mask=kv_mask, other=0.0)
        if DOT_F32:
            k = k.to(tl.float32)
            v = v.to(tl.float32)
            s = tl.dot(q, tl.trans(k), input_precision="ieee") * qk_scale
        else:
            s = tl.dot(q, tl.trans(k)) * qk_scale
        ok = _allowed(offs_m, offs_n, m_valid, n_valid, b, KMASK, SEG, sm_b, half_window, n_global,
                      HAS_KMASK, HAS_SEG, LOCAL)
        s = tl.where(ok, s, K_NEG)
        m_new = tl.maximum(m_i, tl.max(s, 1))
        p = tl.where(ok, tl.exp2(s - m_new[:, None]), 0.0)
        alpha = tl.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        if DOT_F32:
            acc = acc * alpha[:, None] + tl.dot(p, v, input_precision="ieee")
        else:
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new
    has = l_i > 0.0
    l_safe = tl.where(has, l_i, 1.0)
    out = acc / l_safe[:, None]
    tl.store(O + b * so_b + hh * so_h + offs_m[:, None] * so_n + offs_d[None, :], out.to(O.dtype.element_ty),
             mask=m_valid[:, None] & d_valid[None, :])
    lse = tl.where(has, m_i + tl.log2(l_safe), -K_NEG)
    tl.store(LSE + bh * N + offs_m, lse, mask=m_valid)


@triton.autotune(configs=configs.attention_configs(), key=["BLOCK_D", "SPARSE", "LOCAL", "HAS_SEG", "HAS_KMASK"])
@triton.jit
def _bwd_dkdv_kernel(Q, K, V, DO, LSE, DELTA, DK, DV, KMASK, SEG, CPTR, CIDX,
                     sq_b, sq_h, sq_n, sk_b, sk_h, sk_n, sv_b, sv_h, sv_n, sdo_b, sdo_h, sdo_n,
                     sdk_b, sdk_h, sdk_n, sdv_b, sdv_h, sdv_n, sm_b,
                     H, N, D, sm_scale, qk_scale, half_window, n_global,
                     HAS_KMASK: tl.constexpr, HAS_SEG: tl.constexpr, LOCAL: tl.constexpr, SPARSE: tl.constexpr,
                     DOT_F32: tl.constexpr, BLOCK: tl.constexpr, BLOCK_D: tl.constexpr):
    kb = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    hh = bh % H
    offs_n = kb * BLOCK + tl.arange(0, BLOCK)
    offs_d = tl.arange(0, BLOCK_D)
    n_valid = offs_n < N
    d_valid = offs_d < D
    kv_mask = n_valid[:, None] & d_valid[None, :]
    k = tl.load(K + b * sk_b + hh * sk_h + offs_n[:, None] * sk_n + offs_d[None, :], mask=kv_mask, other=0.0)
    v = tl.load(V + b * sv_b + hh * sv_h + offs_n[:, None] * sv_n + offs_d[None, :], mask=kv_mask, other=0.0)
    k = k.to(tl.float32)
    v = v.to(tl.float32)
    dk = tl.zeros([BLOCK, BLOCK_D], tl.float32)
    dv = tl.zeros([BLOCK, BLOCK_D], tl.float32)
    if SPARSE:
        lo = tl.load(CPTR + kb)
        hi = tl.load(CPTR + kb + 1)
    else:
        lo = 0
        hi = tl.cdiv(N, BLOCK)
    for it in range(lo, hi):
        if SPARSE:
            qb = tl.load(CIDX + it)
        else:
            qb = it
        offs_m = qb * BLOCK + tl.arange(0, BLOCK)
        m_valid = offs_m < N
        q_mask = m_valid[:, None] & d_valid[None, :]
        q = tl.load(Q + b * sq_b + hh * sq_h + offs_m[:, None] * sq_n + offs_d[None, :], mask=q_mask,
                    other=0.0).to(tl.float32)
        do = tl.load(DO + b * sdo_b + hh * sdo_h + offs_m[:, None] * sdo_n + offs_d[None, :], mask=q_mask,
                     other=0.0).to(tl.float32)
        lse = tl.load(LSE + bh * N + offs_m, mask=m_valid, other=-K_NEG)
        delta = tl.load(DELTA + bh * N + offs_m, mask=m_valid, other=0.0)
        s = tl.dot(q, tl.trans(k), input_precision="ieee") * qk_scale
        ok = _allowed(offs_m, offs_n, m_valid, n_valid, b, KMASK, SEG, sm_b, half_window, n_global,
                      HAS_KMASK, HAS_SEG, LOCAL)
        p = tl.where(ok, tl.exp2(s - lse[:, None]), 0.0)
        dv += tl.dot(tl.trans(p), do, input_precision="ieee")
        dp = tl.dot(do, tl.trans(v), input_precision="ieee")
        ds = p * (dp - delta[:, None])
        dk += tl.dot(tl.trans(ds), q, input_precision="ieee")
    dk = dk * sm_scale
    tl.store(DK + b * sdk_b + hh * sdk_h + offs_n[:, None] * sdk_n + offs_d[None, :], dk.to(DK.dtype.element_ty),
             mask=kv_mask)
    tl.store(DV + b * sdv_b + hh * sdv_h + offs_n[:, None] * sdv_n + offs_d[None, :], dv.to(DV.dtype.element_ty),
             mask=kv_mask)


@triton.autotune(configs=configs.attention_configs(), key=["BLOCK_D", "SPARSE", "LOCAL", "HAS_SEG", "HAS_KMASK"])
@triton.jit
def _bwd_dq_kernel(Q, K, V, DO, LSE, DELTA, DQ, KMASK, SEG, BPTR, BIDX,
                   sq_b, sq_h, sq_n, sk_b, sk_h, sk_n, sv_b, sv_h, sv_n, sdo_b, sdo_h, sdo_n,
                   sdq_b, sdq_h, sdq_n, sm_b,
                   H, N, D, sm_scale, qk_scale, half_window, n_global,
                   HAS_KMASK: tl.constexpr, HAS_SEG: tl.constexpr, LOCAL: tl.constexpr, SPARSE: tl.constexpr,
                   DOT_F32: tl.constexpr, BLOCK: tl.constexpr, BLOCK_D: tl.constexpr):
    qb = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    hh = bh % H
    offs_m = qb * BLOCK + tl.arange(0, BLOCK)
    offs_d = tl.arange(0, BLOCK_D)
    m_valid = offs_m < N
    d_valid = offs_d < D
    q_mask = m_valid[:, None] & d_valid[None, :]
    q = tl.load(Q + b * sq_b + hh * sq_h + offs_m[:, None] * sq_n + offs_d[None, :], mask=q_mask,
                other=0.0).to(tl.float32)
    do = tl.load(DO + b * sdo_b + hh * sdo_h + offs_m[:, None] * sdo_n + offs_d[None, :], mask=q_mask,
                 other=0.0).to(tl.float32)
    lse = tl.load(LSE + bh * N + offs_m, mask=m_valid, other=-K_NEG)
    delta = tl.load(DELTA + bh * N + offs_m, mask=m_valid, other=0.0)
    dq = tl.zeros([BLOCK, BLOCK_D], tl.float32)
    if SPARSE:
        lo = tl.load(BPTR + qb)
        hi = tl.load(BPTR + qb + 1)
    else:
        lo = 0
        hi = tl.cdiv(N, BLOCK)
    for it in range(lo, hi):
        if SPARSE:
            kb = tl.load(BIDX + it)
        else:
            kb = it
        offs_n = kb * BLOCK + tl.arange(0, BLOCK)
        n_valid = offs_n < N
        kv_mask = n_valid[:, None] & d_valid[None, :]
        k = tl.load(K + b * sk_b + hh * sk_h + offs_n[:, None] * sk_n + offs_d[None, :], mask=kv_mask,
                    other=0.0).to(tl.float32)
        v = tl.load(V + b * sv_b + hh * sv_h + offs_n[:, None] * sv_n + offs_d[None, :], mask=kv_mask,
                    other=0.0).to(tl.float32)
        s = tl.dot(q, tl.trans(k), input_precision="ieee") * qk_scale
        ok = _allowed(offs_m, offs_n, m_valid, n_valid, b, KMASK, SEG, sm_b, half_window, n_global,
                      HAS_KMASK, HAS_SEG, LOCAL)
        p = tl.where(ok, tl.exp2(s - lse[:, None]), 0.0)
        dp = tl.dot(do, tl.trans(v), input_precision="ieee")
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds, k, input_precision="ieee")
    dq = dq * sm_scale
    tl.store(DQ + b * sdq_b + hh * sdq_h + offs_m[:, None] * sdq_n + offs_d[None, :], dq.to(DQ.dtype.element_ty),
             mask=q_mask)


# ----------------------------------------------------------------------------- layouts at kernel granularity

def ragged_arange(starts: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """concat(arange(s, s + n) for s, n in zip(starts, lengths))."""
    lengths = lengths.clamp_min(0)
    total = int(lengths.sum())
    if total == 0:
        return torch.zeros(0, dtype=torch.int64, device=starts.device)
    offsets = torch.cumsum(lengths, 0) - lengths
    row = torch.repeat_interleave(torch.arange(lengths.numel(), device=starts.device), lengths)
    return starts[row] + torch.arange(total, device=starts.device) - offsets[row]


def csr_from_lists(counts: torch.Tensor, indices: torch.Tensor):
    indptr = torch.zeros(counts.numel() + 1, dtype=torch.int64, device=counts.device)
    indptr[1:] = torch.cumsum(counts, 0)
    return indptr, indices.to(torch.int64)


def transpose_csr(indptr: torch.Tensor, indices: torch.Tensor, n_cols: int):
    """CSR rows->cols into cols->rows (rows sorted within each column)."""
    counts = indptr[1:] - indptr[:-1]
    rows = torch.repeat_interleave(torch.arange(counts.numel(), device=indptr.device), counts)
    order = torch.argsort(indices * (counts.numel() + 1) + rows)
    col_counts = torch.bincount(indices, minlength=n_cols)
    return csr_from_lists(col_counts, rows[order])


@dataclass
class Plan:
    """Everything a launch needs besides q, k, v (built once per layout and reused)."""
    block: int
    sparse: bool
    bptr: torch.Tensor | None = None  # CSR query block -> key blocks
    bidx: torch.Tensor | None = None
    cptr: torch.Tensor | None = None  # CSC key block -> query blocks
    cidx: torch.Tensor | None = None
    seg: torch.Tensor | None = None   # int32 [N]
    local: bool = False
    half_window: int = 0
    n_global: int = 0

    @staticmethod
    def from_csr(block, indptr, indices, n_blocks, device, **kw) -> "Plan":
        indptr = indptr.to(device, torch.int64)
        indices = indices.to(device, torch.int64)
        cptr, cidx = transpose_csr(indptr, indices, n_blocks)
        return Plan(block, True, indptr.to(torch.int32), indices.to(torch.int32), cptr.to(torch.int32),
                    cidx.to(torch.int32), **kw)


# ----------------------------------------------------------------------------- autograd

def _strides(x):
    return x.stride(0), x.stride(1), x.stride(2)


def _last_contig(x):
    return x if x.stride(-1) == 1 else x.contiguous()


class FlashAttention(torch.autograd.Function):
    """q, k, v: [B, H, N, D] (any strides with unit last stride; varlen passes a [1, H, T, D] view)."""

    @staticmethod
    def forward(ctx, q, k, v, kmask, plan: Plan, scale: float):
        q, k, v = (_last_contig(x) for x in (q, k, v))
        B, H, N, D = q.shape
        o = torch.empty_like(q)
        lse = torch.empty(B * H, N, dtype=torch.float32, device=q.device)
        BLOCK_D = configs.padded_dim(D)
        dummy = torch.zeros(1, dtype=torch.int32, device=q.device)
        km = kmask if kmask is not None else dummy
        seg = plan.seg if plan.seg is not None else dummy
        grid = (triton.cdiv(N, plan.block), B * H)
        dot_f32 = configs.interpreting() or q.dtype == torch.float32 or q.dtype == torch.float64
        if N > 0 and B * H > 0:
            _fwd_kernel[grid](
                q, k, v, o, lse, km, seg,
                plan.bptr if plan.sparse else dummy, plan.bidx if plan.sparse else dummy,
                *_strides(q), *_strides(k), *_strides(v), *_strides(o), km.stride(0) if kmask is not None else 0,
                H, N, D, scale * LOG2E, plan.half_window, plan.n_global,
                HAS_KMASK=kmask is not None, HAS_SEG=plan.seg is not None, LOCAL=plan.local, SPARSE=plan.sparse,
                DOT_F32=dot_f32, BLOCK=plan.block, BLOCK_D=BLOCK_D)
        ctx.save_for_backward(q, k, v, o, lse, kmask if kmask is not None else dummy)
        ctx.has_kmask = kmask is not None
        ctx.plan = plan
        ctx.scale = scale
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse, kmask = ctx.saved_tensors
        plan, scale = ctx.plan, ctx.scale
        B, H, N, D = q.shape
        do = _last_contig(do)
        delta = (do.float() * o.float()).sum(-1).reshape(B * H, N).contiguous()
        dq = torch.empty_like(q)
        dk = torch.empty_like(k)
        dv = torch.empty_like(v)
        BLOCK_D = configs.padded_dim(D)
        dummy = torch.zeros(1, dtype=torch.int32, device=q.device)
        seg = plan.seg if plan.seg is not None else dummy
        sm_b = kmask.stride(0) if ctx.has_kmask else 0
        if N == 0 or B * H == 0:
            return torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v), None, None, None
        common = dict(HAS_KMASK=ctx.has_kmask, HAS_SEG=plan.seg is not None, LOCAL=plan.local,
                      SPARSE=plan.sparse, DOT_F32=True, BLOCK=plan.block, BLOCK_D=BLOCK_D)
        grid = (triton.cdiv(N, plan.block), B * H)
        _bwd_dkdv_kernel[grid](
            q, k, v, do, lse, delta, dk, dv, kmask, seg,
            plan.cptr if plan.sparse else dummy, plan.cidx if plan.sparse else dummy,
            *_strides(q), *_strides(k), *_strides(v), *_strides(do), *_strides(dk), *_strides(dv), sm_b,
            H, N, D, scale, scale * LOG2E, plan.half_window, plan.n_global, **common)
        _bwd_dq_kernel[grid](
            q, k, v, do, lse, delta, dq, kmask, seg,
            plan.bptr if plan.sparse else dummy, plan.bidx if plan.sparse else dummy,
            *_strides(q), *_strides(k), *_strides(v), *_strides(do), *_strides(dq), sm_b,
            H, N, D, scale, scale * LOG2E, plan.half_window, plan.n_global, **common)
        return dq, dk, dv, None, None, None


def default_scale(q, scale):
    return float(scale) if scale is not None else 1.0 / math.sqrt(q.shape[-1])


def kmask_arg(mask):
    """Boolean [B, N] mask -> int8 contiguous (or None)."""
    return None if mask is None else mask.to(torch.int8).contiguous()
