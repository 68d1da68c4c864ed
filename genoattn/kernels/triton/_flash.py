"""One flash-attention core (forward + backward Triton kernels) shared by the dense, varlen,
block-sparse and local-global patterns.

Every pattern is "square blocks of BLOCK tokens; per query block a list of key blocks (CSR), or
all of them; an additive key bias and, for some patterns, a token-pair predicate inside a block":

* dense:        all key blocks, key padding as an additive bias (0 or NEG per key);
* varlen:       packed [T, H, D] seen as [1, H, T, D]; key blocks overlapping the query block's
                sequences; predicate ``seq_id[i] == seq_id[j]``;
* block-sparse: the user's BlockLayout refined to BLOCK; key bias;
* local-global: band blocks + global blocks (all blocks for query blocks holding global tokens);
                predicate ``|i-j| <= w//2 (same segment) or i < g or j < g``, key bias.

Head dim is 16, so the exponential unit bounds these kernels, not the tensor cores: per score the
forward issues one FFMA (scale + key bias), one FMNMX, one FADD, one MUFU.EX2, one FADD (row sum)
and half a bf16 pack, which keeps a warp under the 8 issue slots one MUFU.EX2 costs it
(``benchmarks/sass_budget.py`` checks this on the compiled SASS). Hence:

* scores are scaled by ``scale * log2(e)`` inside the FFMA that adds the key bias (base-2 online
  softmax, ``exp2``);
* masked scores are a large finite negative (NEG), never -inf, and ``p`` is *not* zeroed by a second
  select: a row whose keys so far are all masked has ``m = NEG`` and ``p = 1``, and the first allowed
  key rescales that junk away (``alpha = exp2(NEG - m) = 0``); a row that never meets an allowed key
  ends with ``m = NEG`` and is written as zeros with ``lse = +1e30`` (so its backward is zero);
* query rows past the end are not masked in the loop (their q is 0 and they are never stored);
* the dots run on the tensor cores in the input dtype with fp32 accumulation (DOT_F32 = fp32 inputs,
  or bf16 under TRITON_INTERPRET, whose bf16 ``tl.dot`` is wrong).

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
from genoattn.kernels.triton._tl import K_NEG, LOG2E, NEG, block_at, block_range
from genoattn.kernels.triton._tl import dot as _dot


# ----------------------------------------------------------------------------- kernels

@triton.jit
def _key_bias(KBIAS, b, sb_b, offs_n, N, HAS_KBIAS: tl.constexpr):
    """[BLOCK] additive bias of a key block: 0 for a real key, NEG for padding and past the end."""
    n_valid = offs_n < N
    if HAS_KBIAS:
        return tl.load(KBIAS + b * sb_b + offs_n, mask=n_valid, other=K_NEG)
    else:
        return tl.where(n_valid, 0.0, K_NEG)


@triton.jit
def _pair_mask(s, offs_m, offs_n, m_lo, n_lo, N, SEG, half_window, n_global, BLOCK: tl.constexpr,
               HAS_SEG: tl.constexpr, LOCAL: tl.constexpr):
    """Scores with the token-pair predicate of varlen / local-global applied (s unchanged without one).

    A block pair in which every pair is allowed (both blocks inside one sequence; inside the band, or
    a block of global tokens) skips the per-score predicate: that is most blocks at level 2, and the
    diagonal and global blocks at level 6."""
    if HAS_SEG or LOCAL:
        m_hi = tl.minimum(m_lo + BLOCK, N) - 1
        n_hi = tl.minimum(n_lo + BLOCK, N) - 1
        full = True
        if HAS_SEG:
            s_m0 = tl.load(SEG + m_lo)
            full = (s_m0 == tl.load(SEG + m_hi)) & (s_m0 == tl.load(SEG + n_lo)) & (s_m0 == tl.load(SEG + n_hi))
        if LOCAL:
            in_band = (m_hi - n_lo <= half_window) & (n_hi - m_lo <= half_window)
            full = (full & in_band) | (m_hi < n_global) | (n_hi < n_global)
        if not full:
            if HAS_SEG:
                seg_q = tl.load(SEG + offs_m, mask=offs_m < N, other=-1)
                seg_k = tl.load(SEG + offs_n, mask=offs_n < N, other=-2)
                ok = seg_q[:, None] == seg_k[None, :]
            if LOCAL:
                # |i - j| <= w/2 as one unsigned compare of (i - j + w/2) with w
                near = (offs_m[:, None] - offs_n[None, :] + half_window).to(tl.uint32) <= 2 * half_window
                if HAS_SEG:
                    near = near & ok
                ok = near | (offs_m < n_global)[:, None] | (offs_n < n_global)[None, :]
            s = tl.where(ok, s, K_NEG)
    return s


@triton.jit
def _scores(q, k, bias, offs_m, offs_n, m_lo, n_lo, N, SEG, qk_scale, half_window, n_global,
            BLOCK: tl.constexpr, HAS_SEG: tl.constexpr, LOCAL: tl.constexpr, DOT_F32: tl.constexpr):
    """[BLOCK, BLOCK] scores in log2 units of a (query block, key block) pair, masked."""
    s = _dot(q, tl.trans(k), DOT_F32) * qk_scale + bias[None, :]
    return _pair_mask(s, offs_m, offs_n, m_lo, n_lo, N, SEG, half_window, n_global, BLOCK, HAS_SEG, LOCAL)


@triton.jit
def _load_tile(X, base, stride_n, offs_n, offs_d, N, D, DOT_F32: tl.constexpr):
    x = tl.load(X + base + offs_n[:, None] * stride_n + offs_d[None, :],
                mask=(offs_n < N)[:, None] & (offs_d < D)[None, :], other=0.0)
    if DOT_F32:
        x = x.to(tl.float32)
    return x


@triton.autotune(configs=configs.attention_configs(), key=["BLOCK_D", "SPARSE", "LOCAL", "HAS_SEG", "HAS_KBIAS"])
@triton.jit
def _fwd_kernel(Q, K, V, O, LSE, KBIAS, SEG, BPTR, BIDX,
                sq_b, sq_h, sq_n, sk_b, sk_h, sk_n, sv_b, sv_h, sv_n, so_b, so_h, so_n, sb_b,
                H, N, D, qk_scale, half_window, n_global,
                HAS_KBIAS: tl.constexpr, HAS_SEG: tl.constexpr, LOCAL: tl.constexpr, SPARSE: tl.constexpr,
                DOT_F32: tl.constexpr, BLOCK: tl.constexpr, BLOCK_D: tl.constexpr):
    qb = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    hh = bh % H
    m_lo = qb * BLOCK
    offs_m = m_lo + tl.arange(0, BLOCK)
    offs_d = tl.arange(0, BLOCK_D)
    q = _load_tile(Q, b * sq_b + hh * sq_h, sq_n, offs_m, offs_d, N, D, DOT_F32)
    m_i = tl.full([BLOCK], K_NEG, tl.float32)
    l_i = tl.zeros([BLOCK], tl.float32)
    acc = tl.zeros([BLOCK, BLOCK_D], tl.float32)
    lo, hi = block_range(BPTR, qb, N, BLOCK, SPARSE)
    for it in range(lo, hi):
        kb = block_at(BIDX, it, SPARSE)
        n_lo = kb * BLOCK
        offs_n = n_lo + tl.arange(0, BLOCK)
        k = _load_tile(K, b * sk_b + hh * sk_h, sk_n, offs_n, offs_d, N, D, DOT_F32)
        v = _load_tile(V, b * sv_b + hh * sv_h, sv_n, offs_n, offs_d, N, D, DOT_F32)
        bias = _key_bias(KBIAS, b, sb_b, offs_n, N, HAS_KBIAS)
        s = _scores(q, k, bias, offs_m, offs_n, m_lo, n_lo, N, SEG, qk_scale, half_window, n_global, BLOCK,
                    HAS_SEG, LOCAL, DOT_F32)
        m_new = tl.maximum(m_i, tl.max(s, 1))
        p = tl.exp2(s - m_new[:, None])
        alpha = tl.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + _dot(p.to(v.dtype), v, DOT_F32)
        m_i = m_new
    has = m_i > 0.5 * K_NEG  # at least one allowed key
    l_safe = tl.where(has, l_i, 1.0)
    out = tl.where(has[:, None], acc / l_safe[:, None], 0.0)
    m_valid = offs_m < N
    tl.store(O + b * so_b + hh * so_h + offs_m[:, None] * so_n + offs_d[None, :], out.to(O.dtype.element_ty),
             mask=m_valid[:, None] & (offs_d < D)[None, :])
    lse = tl.where(has, m_i + tl.log2(l_safe), -K_NEG)
    tl.store(LSE + bh * N + offs_m, lse, mask=m_valid)


@triton.autotune(configs=configs.attention_configs(), key=["BLOCK_D", "SPARSE", "LOCAL", "HAS_SEG", "HAS_KBIAS"])
@triton.jit
def _bwd_dkdv_kernel(Q, K, V, DO, LSE, DELTA, DK, DV, KBIAS, SEG, CPTR, CIDX,
                     sq_b, sq_h, sq_n, sk_b, sk_h, sk_n, sv_b, sv_h, sv_n, sdo_b, sdo_h, sdo_n,
                     sdk_b, sdk_h, sdk_n, sdv_b, sdv_h, sdv_n, sb_b,
                     H, N, D, sm_scale, qk_scale, half_window, n_global,
                     HAS_KBIAS: tl.constexpr, HAS_SEG: tl.constexpr, LOCAL: tl.constexpr, SPARSE: tl.constexpr,
                     DOT_F32: tl.constexpr, BLOCK: tl.constexpr, BLOCK_D: tl.constexpr):
    kb = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    hh = bh % H
    n_lo = kb * BLOCK
    offs_n = n_lo + tl.arange(0, BLOCK)
    offs_d = tl.arange(0, BLOCK_D)
    k = _load_tile(K, b * sk_b + hh * sk_h, sk_n, offs_n, offs_d, N, D, DOT_F32)
    v = _load_tile(V, b * sv_b + hh * sv_h, sv_n, offs_n, offs_d, N, D, DOT_F32)
    bias = _key_bias(KBIAS, b, sb_b, offs_n, N, HAS_KBIAS)  # one key block per program: loaded once
    dk = tl.zeros([BLOCK, BLOCK_D], tl.float32)
    dv = tl.zeros([BLOCK, BLOCK_D], tl.float32)
    lo, hi = block_range(CPTR, kb, N, BLOCK, SPARSE)
    for it in range(lo, hi):
        qb = block_at(CIDX, it, SPARSE)
        m_lo = qb * BLOCK
        offs_m = m_lo + tl.arange(0, BLOCK)
        m_valid = offs_m < N
        q = _load_tile(Q, b * sq_b + hh * sq_h, sq_n, offs_m, offs_d, N, D, DOT_F32)
        do = _load_tile(DO, b * sdo_b + hh * sdo_h, sdo_n, offs_m, offs_d, N, D, DOT_F32)
        lse = tl.load(LSE + bh * N + offs_m, mask=m_valid, other=-K_NEG)
        delta = tl.load(DELTA + bh * N + offs_m, mask=m_valid, other=0.0)
        s = _scores(q, k, bias, offs_m, offs_n, m_lo, n_lo, N, SEG, qk_scale, half_window, n_global, BLOCK,
                    HAS_SEG, LOCAL, DOT_F32)
        p = tl.exp2(s - lse[:, None])  # 0 where masked, and on rows without an allowed key (lse = +1e30)
        dv += _dot(tl.trans(p.to(do.dtype)), do, DOT_F32)
        dp = _dot(do, tl.trans(v), DOT_F32)
        ds = p * (dp - delta[:, None])
        dk += _dot(tl.trans(ds.to(q.dtype)), q, DOT_F32)
    dk = dk * sm_scale
    kv_mask = (offs_n < N)[:, None] & (offs_d < D)[None, :]
    tl.store(DK + b * sdk_b + hh * sdk_h + offs_n[:, None] * sdk_n + offs_d[None, :], dk.to(DK.dtype.element_ty),
             mask=kv_mask)
    tl.store(DV + b * sdv_b + hh * sdv_h + offs_n[:, None] * sdv_n + offs_d[None, :], dv.to(DV.dtype.element_ty),
             mask=kv_mask)


@triton.autotune(configs=configs.attention_configs(), key=["BLOCK_D", "SPARSE", "LOCAL", "HAS_SEG", "HAS_KBIAS"])
@triton.jit
def _bwd_dq_kernel(Q, K, V, DO, LSE, DELTA, DQ, KBIAS, SEG, BPTR, BIDX,
                   sq_b, sq_h, sq_n, sk_b, sk_h, sk_n, sv_b, sv_h, sv_n, sdo_b, sdo_h, sdo_n,
                   sdq_b, sdq_h, sdq_n, sb_b,
                   H, N, D, sm_scale, qk_scale, half_window, n_global,
                   HAS_KBIAS: tl.constexpr, HAS_SEG: tl.constexpr, LOCAL: tl.constexpr, SPARSE: tl.constexpr,
                   DOT_F32: tl.constexpr, BLOCK: tl.constexpr, BLOCK_D: tl.constexpr):
    qb = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    hh = bh % H
    m_lo = qb * BLOCK
    offs_m = m_lo + tl.arange(0, BLOCK)
    offs_d = tl.arange(0, BLOCK_D)
    m_valid = offs_m < N
    q = _load_tile(Q, b * sq_b + hh * sq_h, sq_n, offs_m, offs_d, N, D, DOT_F32)
    do = _load_tile(DO, b * sdo_b + hh * sdo_h, sdo_n, offs_m, offs_d, N, D, DOT_F32)
    lse = tl.load(LSE + bh * N + offs_m, mask=m_valid, other=-K_NEG)
    delta = tl.load(DELTA + bh * N + offs_m, mask=m_valid, other=0.0)
    dq = tl.zeros([BLOCK, BLOCK_D], tl.float32)
    lo, hi = block_range(BPTR, qb, N, BLOCK, SPARSE)
    for it in range(lo, hi):
        kb = block_at(BIDX, it, SPARSE)
        n_lo = kb * BLOCK
        offs_n = n_lo + tl.arange(0, BLOCK)
        k = _load_tile(K, b * sk_b + hh * sk_h, sk_n, offs_n, offs_d, N, D, DOT_F32)
        v = _load_tile(V, b * sv_b + hh * sv_h, sv_n, offs_n, offs_d, N, D, DOT_F32)
        bias = _key_bias(KBIAS, b, sb_b, offs_n, N, HAS_KBIAS)
        s = _scores(q, k, bias, offs_m, offs_n, m_lo, n_lo, N, SEG, qk_scale, half_window, n_global, BLOCK,
                    HAS_SEG, LOCAL, DOT_F32)
        p = tl.exp2(s - lse[:, None])
        dp = _dot(do, tl.trans(v), DOT_F32)
        ds = p * (dp - delta[:, None])
        dq += _dot(ds.to(k.dtype), k, DOT_F32)
    dq = dq * sm_scale
    tl.store(DQ + b * sdq_b + hh * sdq_h + offs_m[:, None] * sdq_n + offs_d[None, :], dq.to(DQ.dtype.element_ty),
             mask=m_valid[:, None] & (offs_d < D)[None, :])


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
    """q, k, v: [B, H, N, D] (any strides with unit last stride; varlen passes a [1, H, T, D] view);
    kbias: None or float32 [B, N] additive key bias (0 or NEG, see :func:`key_bias_arg`)."""

    @staticmethod
    def forward(ctx, q, k, v, kbias, plan: Plan, scale: float):
        q, k, v = (_last_contig(x) for x in (q, k, v))
        B, H, N, D = q.shape
        o = torch.empty_like(q)
        lse = torch.empty(B * H, N, dtype=torch.float32, device=q.device)
        dummy = torch.zeros(1, dtype=torch.int32, device=q.device)
        if N > 0 and B * H > 0:
            _fwd_kernel[(triton.cdiv(N, plan.block), B * H)](
                q, k, v, o, lse, *_mask_args(kbias, plan, dummy), *_block_args(plan, dummy, transposed=False),
                *_strides(q), *_strides(k), *_strides(v), *_strides(o), _bias_stride(kbias),
                H, N, D, scale * LOG2E, plan.half_window, plan.n_global, **_constexprs(kbias, plan, q))
        ctx.save_for_backward(q, k, v, o, lse, kbias if kbias is not None else dummy)
        ctx.has_kbias = kbias is not None
        ctx.plan = plan
        ctx.scale = scale
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse, kbias = ctx.saved_tensors
        kbias = kbias if ctx.has_kbias else None
        plan, scale = ctx.plan, ctx.scale
        B, H, N, D = q.shape
        if N == 0 or B * H == 0:
            return torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v), None, None, None
        do = _last_contig(do)
        delta = (do.float() * o.float()).sum(-1).reshape(B * H, N).contiguous()
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        dummy = torch.zeros(1, dtype=torch.int32, device=q.device)
        grid = (triton.cdiv(N, plan.block), B * H)
        const = _constexprs(kbias, plan, q)
        tail = (H, N, D, scale, scale * LOG2E, plan.half_window, plan.n_global)
        _bwd_dkdv_kernel[grid](
            q, k, v, do, lse, delta, dk, dv, *_mask_args(kbias, plan, dummy),
            *_block_args(plan, dummy, transposed=True),
            *_strides(q), *_strides(k), *_strides(v), *_strides(do), *_strides(dk), *_strides(dv),
            _bias_stride(kbias), *tail, **const)
        _bwd_dq_kernel[grid](
            q, k, v, do, lse, delta, dq, *_mask_args(kbias, plan, dummy), *_block_args(plan, dummy, transposed=False),
            *_strides(q), *_strides(k), *_strides(v), *_strides(do), *_strides(dq), _bias_stride(kbias), *tail, **const)
        return dq, dk, dv, None, None, None


def _mask_args(kbias, plan, dummy):
    return (kbias if kbias is not None else dummy), (plan.seg if plan.seg is not None else dummy)


def _block_args(plan, dummy, transposed: bool):
    if not plan.sparse:
        return dummy, dummy
    return (plan.cptr, plan.cidx) if transposed else (plan.bptr, plan.bidx)


def _bias_stride(kbias):
    return kbias.stride(0) if kbias is not None else 0


def _constexprs(kbias, plan, q):
    return dict(HAS_KBIAS=kbias is not None, HAS_SEG=plan.seg is not None, LOCAL=plan.local, SPARSE=plan.sparse,
                DOT_F32=configs.dot_in_fp32(q.dtype), BLOCK=plan.block, BLOCK_D=configs.padded_dim(q.shape[-1]))


def default_scale(q, scale):
    return float(scale) if scale is not None else 1.0 / math.sqrt(q.shape[-1])


def key_bias_arg(mask):
    """Boolean [B, N] key mask (True = real key) -> float32 [B, N] additive bias, 0 or NEG (or None)."""
    if mask is None:
        return None
    return torch.where(mask.bool(), 0.0, NEG).to(torch.float32).contiguous()
