"""Length bucketing: sort a shard's examples by length and cut batches under a token budget.

Sorting puts examples of similar length together, so a batch pads only to its own longest
example; the budget (`max_batch_tokens` padded tokens) keeps long batches from growing the
activation memory while short ones get many rows. Ties keep input order, so the batches,
and the order rows are written in, are deterministic.
"""

from __future__ import annotations

import numpy as np


def length_buckets(lengths: np.ndarray, batch_size: int, max_batch_tokens: int) -> list[np.ndarray]:
    """Index arrays of the batches, shortest examples first."""
    order = np.argsort(lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        end = start + 1
        # rows are ascending in length, so the last row added sets the padded width
        while end < len(order) and end - start < batch_size and (end - start + 1) * lengths[order[end]] <= max_batch_tokens:
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


def padded_tokens(lengths: np.ndarray, batches: list[np.ndarray]) -> int:
    return int(sum(len(b) * lengths[b].max() for b in batches))
