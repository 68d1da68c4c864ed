"""Triton helpers shared by the flash and graph kernels (``@triton.jit``, inlined where called)."""

from __future__ import annotations

import triton
import triton.language as tl

NEG = -1.0e30  # large finite negative: -inf makes fully-masked rows NaN
LOG2E = 1.4426950408889634
K_NEG = tl.constexpr(NEG)  # globals read inside @jit kernels must be constexpr
K_LOG2E = tl.constexpr(LOG2E)


@triton.jit
def dot(a, b, DOT_F32: tl.constexpr):
    """fp32 operands: exact fp32 products (no TF32); otherwise the tensor cores in the operands' dtype.
    Accumulation is fp32 either way."""
    if DOT_F32:
        return tl.dot(a, b, input_precision="ieee")
    else:
        return tl.dot(a, b)


@triton.jit
def block_range(PTR, row, N, BLOCK: tl.constexpr, SPARSE: tl.constexpr):
    """[lo, hi) of the CSR row ``row`` (sparse), or every block of N tokens."""
    if SPARSE:
        lo = tl.load(PTR + row)
        hi = tl.load(PTR + row + 1)
    else:
        lo = 0
        hi = tl.cdiv(N, BLOCK)
    return lo, hi


@triton.jit
def block_at(IDX, it, SPARSE: tl.constexpr):
    """The block a trip ``it`` of :func:`block_range` visits."""
    if SPARSE:
        return tl.load(IDX + it)
    else:
        return it
