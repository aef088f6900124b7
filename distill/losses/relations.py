"""MiniLM (Wang et al. 2020): deep self-attention distillation of one teacher layer into the student's last.

L = L_AT + L_VR, each the KL divergence KL(teacher ‖ student) between row-wise softmax distributions, averaged
over heads and real query positions: L_AT over the self-attention distributions softmax(QKᵀ/√d), L_VR over the
value relations softmax(VVᵀ/√d). Both are len × len per head whatever the widths, so a student of any depth
and width learns from one teacher layer with no layer map and no projection; only the head counts must match.
The teacher's side is recomputed from the cached input of that layer (`features: relation`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from distill.common.config_io import NonNegativeFloat, PositiveInt
from distill.losses.registry import Loss, register_loss


def relation_kl(teacher_scores: torch.Tensor, student_scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over heads and real query positions of KL(softmax(teacher) ‖ softmax(student)) over real keys.

    Scores are pre-softmax [B, heads, T, T]; `mask` [B, T] marks real tokens. Padding keys get a large negative
    score (finite, so 0 · (log p_t − log p_s) stays 0 instead of NaN)."""
    if teacher_scores.shape[1] != student_scores.shape[1]:
        raise ValueError(f"MiniLM relations need equal head counts (student {student_scores.shape[1]}, "
                         f"teacher {teacher_scores.shape[1]}): give the student num_attention_heads: "
                         f"{teacher_scores.shape[1]}")
    padding_key = ~mask[:, None, None, :]
    lowest = torch.finfo(torch.float32).min
    log_teacher = teacher_scores.float().masked_fill(padding_key, lowest).log_softmax(dim=-1)
    log_student = student_scores.float().masked_fill(padding_key, lowest).log_softmax(dim=-1)
    per_query = (log_teacher.exp() * (log_teacher - log_student)).sum(dim=-1)  # [B, heads, T]
    real_query = mask[:, None, :].expand_as(per_query)
    return per_query[real_query].mean() if real_query.any() else student_scores.sum() * 0.0


@register_loss("minilm")
@dataclass
class MiniLMRelations(Loss):
    weight: NonNegativeFloat = 1.0
    teacher_layer: PositiveInt | None = None  # None = the teacher's last layer (MiniLM)
    value_weight: NonNegativeFloat = 1.0  # L_AT + value_weight · L_VR (MiniLM: 1)

    def layer(self, teacher_layers: int) -> int:
        return self.teacher_layer or teacher_layers

    def needs(self, student_layers: int, teacher_layers: int) -> dict[str, list[int]]:
        return {"relation": [self.layer(teacher_layers)]}

    def student_attention(self, student_layers: int, teacher_layers: int) -> list[int]:
        return [student_layers]  # the student's last layer, whatever its depth

    def __call__(self, student, teacher) -> torch.Tensor:
        mask, ours, theirs = teacher.mask, student.num_layers, self.layer(teacher.num_layers)
        attention = relation_kl(teacher.attention(theirs), student.attention(ours), mask)
        values = relation_kl(teacher.value_relation(theirs), student.value_relation(ours, mask), mask)
        return attention + self.value_weight * values
