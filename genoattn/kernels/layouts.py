"""Sparsity layouts shared by the block-sparse kernels (CSR over blocks)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class BlockLayout:
    """For each query block ``qb``, the key blocks ``indices[indptr[qb]:indptr[qb+1]]`` (sorted).

    block_size: tokens per block; the last block of the sequence may be partial.
    indptr:     int64 [n_query_blocks + 1]
    indices:    int64 [nnz] key block ids
    """

    block_size: int
    indptr: torch.Tensor
    indices: torch.Tensor

    @property
    def n_blocks(self) -> int:
        return int(self.indptr.numel() - 1)

    @property
    def nnz(self) -> int:
        return int(self.indices.numel())

    def to(self, device) -> "BlockLayout":
        return BlockLayout(self.block_size, self.indptr.to(device), self.indices.to(device))

    @staticmethod
    def from_dense(block_mask: torch.Tensor, block_size: int) -> "BlockLayout":
        """From a [n_blocks, n_blocks] boolean block mask."""
        block_mask = block_mask.bool().cpu()
        counts = block_mask.sum(1)
        indptr = torch.zeros(block_mask.shape[0] + 1, dtype=torch.int64)
        indptr[1:] = torch.cumsum(counts, 0)
        indices = block_mask.nonzero()[:, 1].to(torch.int64)
        return BlockLayout(block_size, indptr, indices)
