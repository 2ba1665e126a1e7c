"""In-memory mini-batches: seeded shuffles of tensors, grouped into blocks for Lightning's steps."""

from __future__ import annotations

import torch
from torch import Tensor


class TensorBatches:
    """Mini-batches sliced from in-memory tensors, reshuffled each epoch from a seeded generator.

    An iterable with ``len``; Lightning accepts it as a data loader. No per-sample
    Python work: one index permutation per epoch and one gather per batch. The
    permutation is drawn on the CPU (the same shuffles on every device) and moved to
    the tensors' device once per epoch, so batches are gathered where the data lives.
    """

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, shuffle: bool, seed: int = 0) -> None:
        if len(x) != len(y):
            raise ValueError(f"{len(x)} inputs but {len(y)} labels")
        if batch_size < 1:
            raise ValueError(f"batch size must be positive, got {batch_size}")
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        n = len(self.x)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).to(self.x.device)
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                yield self.x[idx], self.y[idx]
        else:
            for start in range(0, n, self.batch_size):
                yield self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]


class BatchBlocks:
    """Consecutive mini-batches of ``batches`` grouped into lists of up to ``size``.

    The harness hands Lightning one block per training step, and the module
    applies one rule update per mini-batch of the block: Lightning's per-step
    bookkeeping (hooks, progress counters, logging checks) then runs once per
    block instead of once per update. The updates, their order and their data
    are exactly those of ``batches``.
    """

    def __init__(self, batches: TensorBatches, size: int) -> None:
        if size < 1:
            raise ValueError(f"block size must be positive, got {size}")
        self.batches, self.size = batches, size

    def __len__(self) -> int:
        return (len(self.batches) + self.size - 1) // self.size

    def __iter__(self):
        block: list[tuple[Tensor, Tensor]] = []
        for batch in self.batches:
            block.append(batch)
            if len(block) == self.size:
                yield block
                block = []
        if block:
            yield block
