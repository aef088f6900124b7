"""Length-grouped training batches: a permutation of every row, less padding, still random."""

import numpy as np

from distill.common.batching import length_grouped_batches


def _padded(lengths, batches):
    return sum(len(b) * lengths[b].max() for b in batches)


def test_grouped_batches_cover_every_row_once_with_less_padding():
    lengths = np.random.default_rng(1).integers(2, 60, size=5003)
    batches = length_grouped_batches(lengths, 32, np.random.default_rng(0))
    rows = np.concatenate(batches)
    assert len(batches) == -(-5003 // 32)
    assert sorted(rows.tolist()) == list(range(5003))
    assert sum(len(b) != 32 for b in batches) == 1  # only one partial batch
    plain = np.random.default_rng(0).permutation(5003)
    plain_batches = [plain[i : i + 32] for i in range(0, 5003, 32)]
    assert _padded(lengths, batches) < 0.7 * _padded(lengths, plain_batches)
    # batch order is shuffled, not sorted by length across the epoch
    firsts = [lengths[b].max() for b in batches]
    assert firsts != sorted(firsts) and firsts != sorted(firsts, reverse=True)


def test_grouped_batches_depend_only_on_the_seed():
    lengths = np.arange(1000) % 37
    a = length_grouped_batches(lengths, 16, np.random.default_rng([3, 1]))
    b = length_grouped_batches(lengths, 16, np.random.default_rng([3, 1]))
    c = length_grouped_batches(lengths, 16, np.random.default_rng([3, 2]))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
