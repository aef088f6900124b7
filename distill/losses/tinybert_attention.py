"""TinyBERT attention loss: Σ_i MSE(A_s(i), A_t(g(i))) on pre-softmax scores (Jiao et al. 2020,
eq. 7), averaged over heads and real query/key positions.

The reference code zeroes masked positions in both and averages over the padded tensor, which
makes the loss depend on how much padding a batch has; averaging over real positions gives
the same gradient direction without that dependence. Student and teacher need the same
number of heads (TinyBERT: 12 and 12)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from distill.losses.registry import Loss, map_layers, masked_mse, register_loss
from distill.common.config_io import NonNegativeFloat, PositiveInt


@register_loss("tinybert_attention")
@dataclass
class AttentionMSE(Loss):
    weight: NonNegativeFloat = 1.0
    teacher_layers: list[PositiveInt] | None = None

    def needs(self, student_layers: int, teacher_layers: int) -> dict[str, list[int]]:
        return {"attention": [t for _, t in map_layers(student_layers, teacher_layers, self.teacher_layers)]}

    def __call__(self, student, teacher) -> torch.Tensor:
        mask = teacher.mask
        pair_mask = (mask[:, :, None] & mask[:, None, :])[:, None]  # [B, 1, q, k]
        total = 0.0
        for s, t in map_layers(student.num_layers, teacher.num_layers, self.teacher_layers):
            scores, target = student.attention(s).float(), teacher.attention(t).float()
            if scores.shape[1] != target.shape[1]:
                raise ValueError(f"attention loss needs equal head counts (student {scores.shape[1]}, teacher {target.shape[1]})")
            total = total + masked_mse(scores, target, pair_mask.expand(-1, scores.shape[1], -1, -1))
        return total
