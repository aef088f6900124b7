"""Feeding the trainer: shuffled batches from the memory-mapped cache.

Batches come from `TeacherCache.batch` (pyarrow, zero-copy reads) through a DataLoader whose
sampler yields whole index lists, so worker processes build padded batches in parallel and
the main process only moves them to the device. The order of epoch e is a permutation seeded
by (seed, e), so a resumed run skips exactly the batches it already trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from distill.common.batching import length_grouped_batches
from distill.cache import TeacherCache, load
from distill.cache.encoding import list_lengths


class CacheBatches(torch.utils.data.Dataset):
    """`dataset[list_of_indices]` → one padded batch. Opens the cache lazily in each worker."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._cache: TeacherCache | None = None
        cache = load(self.path)
        self.length = len(cache)
        self.token_counts = np.concatenate([list_lengths(chunk) for chunk in cache.table.column("input_ids").chunks]) \
            if self.length else np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        if self._cache is None:
            self._cache = load(self.path)
        return self._cache.batch(indices)

    def __getstate__(self) -> dict[str, Any]:  # workers reopen the memory map instead of copying it
        return {"path": self.path, "_cache": None, "length": self.length, "token_counts": self.token_counts}


class EpochBatches(torch.utils.data.Sampler):
    """Index lists of one epoch, drawn from an RNG seeded by (seed, epoch), from batch `start` on.

    With `lengths`, batches group rows of similar length (see `distill.batching`); without,
    a plain permutation is cut into batches. Either way ceil(size / batch_size) batches.
    """

    def __init__(self, size: int, batch_size: int, seed: int, epoch: int, start: int = 0,
                 lengths: np.ndarray | None = None, rank: int = 0, world: int = 1) -> None:
        self.size, self.batch_size, self.seed, self.epoch, self.start = size, batch_size, seed, epoch, start
        self.lengths = lengths
        self.rank, self.world = rank, world  # distributed: this worker's share of every global batch

    def batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.lengths is not None:
            return [b.tolist() for b in length_grouped_batches(self.lengths, self.batch_size, rng)]
        order = rng.permutation(self.size)
        return [order[i : i + self.batch_size].tolist() for i in range(0, self.size, self.batch_size)]

    def __iter__(self) -> Iterator[list[int]]:
        """The epoch's global batches from `start` on; with `world` > 1 each worker's share of them
        (rows rank, rank + world, ...: every global batch is the 1-worker run's, split across workers)."""
        # a global batch smaller than the worker count repeats its last row on the idle workers
        return iter(batch[self.rank :: self.world] or batch[-1:] for batch in self.batches()[self.start :])

    def __len__(self) -> int:
        return max(0, -(-self.size // self.batch_size) - self.start)


def epoch_loader(dataset: CacheBatches, batch_size: int, seed: int, epoch: int, start: int, num_workers: int,
                 pin_memory: bool, group_by_length: bool = True, rank: int = 0,
                 world: int = 1) -> torch.utils.data.DataLoader:
    # Its own generator: creating a DataLoader iterator draws a seed, and from the global RNG that
    # draw would shift dropout masks between a resumed run and an uninterrupted one.
    return torch.utils.data.DataLoader(
        dataset, batch_size=None, sampler=EpochBatches(len(dataset), batch_size, seed, epoch, start,
                                                        dataset.token_counts if group_by_length else None, rank, world),
        num_workers=num_workers, pin_memory=pin_memory, persistent_workers=False,
        generator=torch.Generator().manual_seed(seed * 100_003 + epoch),
    )
