"""Launch configurations of the Triton kernels, kept apart from the kernels.

Head dim is 16 at every level by default, where the exponential unit (not the tensor cores)
bounds attention; blocks of 64 x 64 keep the exp work per program high while the d=16 tiles of
q/k/v stay in registers. Under ``TRITON_INTERPRET=1`` (CPU tests) one small config is used: the
interpreter cannot autotune over several configs and small blocks make lengths that are not
multiples of the block size cheap to test.
"""

from __future__ import annotations

import os

import triton


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


INTERPRET_BLOCK = 16
# preferred square block (BLOCK_M == BLOCK_N: the sparse layouts are square) per padded head dim
BLOCK_BY_HEAD_DIM = {16: 64, 32: 64, 64: 64, 128: 64}
GRAPH_INTERPRET_BLOCK_E = 16


def dot_in_fp32(dtype) -> bool:
    """fp32/fp64 inputs use exact fp32 dots; bf16 too under the interpreter (its bf16 tl.dot is wrong).
    fp16 and bf16 on a GPU use the tensor cores, and fp16 takes that same path in the CPU tests."""
    import torch
    return dtype in (torch.float32, torch.float64) or (interpreting() and dtype == torch.bfloat16)


def block_size(head_dim: int) -> int:
    if interpreting():
        return INTERPRET_BLOCK
    return BLOCK_BY_HEAD_DIM.get(padded_dim(head_dim), 64)


def padded_dim(head_dim: int) -> int:
    return max(16, 1 << (int(head_dim) - 1).bit_length())


def attention_configs():
    """num_warps / num_stages candidates (the block is fixed by the layout, see block_size).

    No 8 warps: on a 64 x 64 block the compiled sm_90 code of 8 warps computes every exponential
    twice (``benchmarks/sass_budget.py``: 2.0 MUFU.EX2 per score against 1.06 with 2 or 4 warps)."""
    if interpreting():
        return [triton.Config({}, num_warps=4, num_stages=1)]
    return [triton.Config({}, num_warps=w, num_stages=s) for w in (2, 4) for s in (1, 2, 3)]


def graph_configs():
    """Edges per chunk (BLOCK_E, the K side of the tensor-core products, so >= 16) x warps per
    (destination node, 16 heads), chosen by the autotuner."""
    if interpreting():
        return [triton.Config({"BLOCK_E": GRAPH_INTERPRET_BLOCK_E}, num_warps=4, num_stages=1)]
    return [triton.Config({"BLOCK_E": e}, num_warps=w, num_stages=s)
            for e in (16, 32, 64) for w in (2, 4) for s in (1, 2)]
