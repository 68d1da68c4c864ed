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
GRAPH_INTERPRET_BLOCK_E = 8


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
    """Edges per chunk (BLOCK_E) x warps per destination node, chosen by the autotuner.

    Why several: the compiled code depends on the Triton version. In the sm_90 SASS
    (``benchmarks/sass_budget.py``, 16 heads x 16 dims, bf16) the forward issues 95 warp
    instructions per 32 edge-heads with 32 edges and 1 warp under Triton 3.7.1, but 164, with register
    spills, under Triton 3.6.0, whose best is 8 edges (207, no spills); more warps replicate the
    [edges, heads] work (2.0 EX2 per edge-head) and were never the leanest."""
    if interpreting():
        return [triton.Config({"BLOCK_E": GRAPH_INTERPRET_BLOCK_E}, num_warps=4, num_stages=1)]
    return [triton.Config({"BLOCK_E": e}, num_warps=w, num_stages=1) for e in (8, 16, 32) for w in (1, 2)]
