"""Levels 4 and 5 through the Triton kernels (TRITON_INTERPRET=1 without a GPU) agree with the reference."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"  # before any triton kernel module is imported

pytest.importorskip("triton")

from genoattn.levels import chromosome as chrom  # noqa: E402
from genoattn.levels import regulatory as reg  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def small_graph(n=20, p=0.25):
    a = np.random.rand(n, n) < p
    a = a | a.T | np.eye(n, dtype=bool)
    a[3] = False
    a[:, 3] = False                        # a node without edges
    dst, src = np.nonzero(a)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(dst, minlength=n), out=indptr[1:])
    return torch.from_numpy(indptr), torch.from_numpy(src.astype(np.int64)), torch.randn(len(src), 8)


def test_level4_module_triton_matches_reference():
    indptr, indices, feats = small_graph()
    module = reg.RegulatoryGAT(in_dim=12, n_edge_features=8, dim=64, heads=4, edge_dim=8).to(DEVICE).eval()
    x = torch.randn(len(indptr) - 1, 12)
    args = [t.to(DEVICE) for t in (x, indptr, indices, feats)]
    with torch.no_grad():
        ref = module(*args, backend="reference")
        tri = module(*args, backend="triton")
    torch.testing.assert_close(tri, ref, rtol=2e-4, atol=2e-4)


def test_level5_module_triton_matches_reference():
    seq = chrom.SequenceLayout(("a", "b"), (37, 21), 16)
    layout, _ = chrom.build_block_layout(seq, local_window=16, random_blocks=1, seed=2)
    N = seq.n_tokens
    real = np.zeros(N, dtype=bool)
    real[seq.token_positions()] = True
    module = chrom.ChromosomeAttention(in_dim=8, dim=64, heads=4).to(DEVICE).eval()
    x, pos, mask = torch.randn(N, 8), torch.arange(N), torch.from_numpy(real)
    with torch.no_grad():
        ref = module(x.to(DEVICE), pos.to(DEVICE), layout.to(DEVICE), mask.to(DEVICE), backend="reference")
        tri = module(x.to(DEVICE), pos.to(DEVICE), layout.to(DEVICE), mask.to(DEVICE), backend="triton")
    keep = mask.to(DEVICE)
    torch.testing.assert_close(tri[keep], ref[keep], rtol=2e-4, atol=2e-4)
