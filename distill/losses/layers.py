"""Losses on intermediate states over real tokens, student layer i mapped to teacher layer i · L / k by default.

- `pkd`: BERT-PKD (Sun et al. 2019), MSE of L2-normalised [CLS] states (β = `weight`).
- `cosine`: DistilBERT, 1 − cos(h_s, h_t) of last-layer token states.
- `tinybert_embedding`, `tinybert_hidden`, `tinybert_attention`: TinyBERT eqs. 7-9. Attention MSE averages
  over real positions, not the zero-padded tensor, so it does not depend on a batch's padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from distill.common.config_io import NonNegativeFloat, NonNegativeInt, PositiveInt
from distill.losses.registry import Loss, map_layers, masked_mse, register_loss


@register_loss("pkd")
@dataclass
class PatientKD(Loss):
    weight: NonNegativeFloat = 500.0
    teacher_layers: list[NonNegativeInt] | None = None  # teacher layer for student layers 1, 2, ...; None = PKD-Skip

    def pairs(self, student_layers: int, teacher_layers: int) -> list[tuple[int, int]]:
        if self.teacher_layers is None:  # PKD-Skip: every (L/k)-th teacher layer, last layer excluded
            step = teacher_layers // student_layers
            return [(j, j * step) for j in range(1, student_layers)]
        return map_layers(student_layers, teacher_layers, self.teacher_layers)

    def needs(self, student_layers: int, teacher_layers: int) -> dict[str, list[int]]:
        return {"cls": [t for _, t in self.pairs(student_layers, teacher_layers)]}

    def __call__(self, student, teacher) -> torch.Tensor:
        pairs = self.pairs(student.num_layers, teacher.num_layers)
        student_cls = torch.stack([student.cls(j) for j, _ in pairs], dim=1).float()
        teacher_cls = torch.stack([teacher.cls(t) for _, t in pairs], dim=1).float()
        return F.mse_loss(F.normalize(student_cls, dim=-1), F.normalize(teacher_cls, dim=-1))


@register_loss("cosine")
@dataclass
class HiddenCosine(Loss):
    weight: NonNegativeFloat = 1.0
    teacher_layer: NonNegativeInt | None = None  # None = the teacher's last layer

    def needs(self, student_layers: int, teacher_layers: int) -> dict[str, list[int]]:
        return {"hidden": [self.teacher_layer or teacher_layers]}

    def __call__(self, student, teacher) -> torch.Tensor:
        mask = teacher.mask
        s = student.projected_hidden(student.num_layers)[mask].float()
        t = teacher.hidden(self.teacher_layer or teacher.num_layers)[mask].float()
        return (1.0 - F.cosine_similarity(s, t, dim=-1)).mean()


@register_loss("tinybert_embedding")
@dataclass
class EmbeddingMSE(Loss):
    weight: NonNegativeFloat = 1.0
    reads = ("embedding",)

    def __call__(self, student, teacher) -> torch.Tensor:
        return masked_mse(student.projected_hidden(0).float(), teacher.hidden(0).float(), teacher.mask)


@register_loss("tinybert_hidden")
@dataclass
class HiddenMSE(Loss):
    weight: NonNegativeFloat = 1.0
    teacher_layers: list[NonNegativeInt] | None = None  # teacher layer for student layers 1..k

    def needs(self, student_layers: int, teacher_layers: int) -> dict[str, list[int]]:
        return {"hidden": [t for _, t in map_layers(student_layers, teacher_layers, self.teacher_layers)]}

    def __call__(self, student, teacher) -> torch.Tensor:
        pairs = map_layers(student.num_layers, teacher.num_layers, self.teacher_layers)
        return sum(
            masked_mse(student.projected_hidden(s).float(), teacher.hidden(t).float(), teacher.mask) for s, t in pairs
        )


@register_loss("tinybert_attention")
@dataclass
class AttentionMSE(Loss):
    weight: NonNegativeFloat = 1.0
    teacher_layers: list[PositiveInt] | None = None

    def needs(self, student_layers: int, teacher_layers: int) -> dict[str, list[int]]:
        return {"attention": [t for _, t in map_layers(student_layers, teacher_layers, self.teacher_layers)]}

    def student_attention(self, student_layers: int, teacher_layers: int) -> list[int]:
        return [s for s, _ in map_layers(student_layers, teacher_layers, self.teacher_layers)]

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
