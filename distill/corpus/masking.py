"""BERT's static masked-LM corruption of one sequence (create_pretraining_data.py, 80/10/10).

Static masking (each copy masked once, offline) is what lets the teacher's outputs on the masked
positions be cached; K copies per sequence give the student K different maskings of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from distill.corpus.config import CorpusConfig


def prediction_count(candidates: int, config: CorpusConfig) -> int:
    """BERT's n = min(max_predictions, max(1, round(p * candidates))), never more than there are.

    As in BERT, a sequence always gets at least one prediction, even at `mask_probability` 0
    (use `copies: 0` for unmasked rows); `round` is Python's (half to even), like BERT's."""
    wanted = min(config.max_predictions, max(1, int(round(config.mask_probability * candidates))))
    return min(wanted, candidates)


def mask_sequence(
    input_ids: Sequence[int],
    special_mask: Sequence[int | bool],
    config: CorpusConfig,
    rng: np.random.Generator,
    vocab_ids: np.ndarray | Sequence[int],
    *,
    mask_token_id: int,
) -> tuple[list[int], list[int], list[int]]:
    """(masked input_ids, chosen positions ascending, the original ids at those positions).

    Positions are drawn uniformly without replacement among the non-special ones
    (`special_mask` 0). One uniform draw per chosen position decides its fate: below
    `mask_token_ratio` it becomes `mask_token_id`; below `mask_token_ratio + random_token_ratio` a
    token drawn uniformly from `vocab_ids` (the vocabulary without special tokens, so no [SEP]
    is ever inserted and segments can be rebuilt from [SEP]); otherwise it keeps its token.
    """
    ids = np.asarray(input_ids, dtype=np.int64)
    candidates = np.flatnonzero(np.asarray(special_mask, dtype=bool) == 0)
    n = prediction_count(len(candidates), config)
    if n == 0:
        return ids.tolist(), [], []
    positions = np.sort(rng.choice(candidates, size=n, replace=False))
    fate = rng.random(n)
    replacement = np.asarray(vocab_ids, dtype=np.int64)[rng.integers(0, len(vocab_ids), size=n)]
    labels = ids[positions].copy()
    masked = ids.copy()
    to_mask = fate < config.mask_token_ratio
    to_random = ~to_mask & (fate < config.mask_token_ratio + config.random_token_ratio)
    masked[positions[to_mask]] = mask_token_id
    masked[positions[to_random]] = replacement[to_random]
    return masked.tolist(), positions.tolist(), labels.tolist()
