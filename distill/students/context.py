"""What a student may know about its teacher when it is built: the cache's account of it.

The trainer fills this from the cache alone (its teacher config, labels, wordpieces, input
embedding rows). Teacher weights are not in a cache; a student that copies them asks through
`teacher_weights(why)`, which returns a verified local copy or fails in one line saying how to
pass one (`--teacher`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch


@dataclass
class BuildContext:
    teacher_config: Any  # the teacher's transformers config (from the cache's teacher_files/)
    num_labels: int
    num_layers: int
    vocab_size: int
    pad_token_id: int
    pair: bool
    token_ids: Callable[[], np.ndarray]  # distinct wordpiece ids in the cache
    input_embeddings: Callable[[], dict[str, torch.Tensor] | None]  # token_ids, rows, mean; None if absent
    teacher_weights: Callable[[str], Path]  # a verified teacher directory, or a one-line error naming `why`
    # the teacher's head, which the student gets too: classification, token_classification, masked_lm, none
    head: str = "classification"


def task_labels(context: BuildContext) -> dict[str, Any]:
    """Config keys of a new classifier head: the label count, and for token tasks the teacher's tag
    names too (a saved tagger then decodes its own predictions)."""
    if context.head == "classification":
        return {"num_labels": context.num_labels}
    if context.head == "token_classification":
        config = context.teacher_config
        return {"num_labels": context.num_labels, "id2label": dict(config.id2label), "label2id": dict(config.label2id)}
    return {}
