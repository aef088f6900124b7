"""mask — Tang et al. 2019, "Distilling Task-Specific Knowledge from BERT into Simple
Neural Networks", §3.1: each word is replaced by [MASK] with probability p_mask = 0.1."""

from __future__ import annotations

from dataclasses import dataclass

from augment.rules.registry import register_rule
from distill.common.config_io import NonEmptyStr, Probability


@register_rule("mask")
@dataclass
class MaskRule:
    p: Probability = 0.1  # p_mask, Tang et al. 2019 §3.1
    token: NonEmptyStr = "[MASK]"  # BERT's mask token, so the teacher sees a familiar symbol
