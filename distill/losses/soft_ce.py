"""TinyBERT prediction-layer loss: soft cross-entropy −Σ softmax(z_t/T) · log softmax(z_s/T), T = 1."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from distill.losses.registry import Loss, register_loss
from distill.common.config_io import NonNegativeFloat, PositiveFloat


@register_loss("soft_ce")
@dataclass
class SoftCrossEntropy(Loss):
    weight: NonNegativeFloat = 1.0
    temperature: PositiveFloat = 1.0

    def needs(self, student_layers: int, teacher_layers: int) -> dict[str, list[int]]:
        return {"logits": [], "classes": []}

    def __call__(self, student, teacher) -> torch.Tensor:
        t = self.temperature
        teacher = F.softmax(teacher.logits.float() / t, dim=-1)
        return -(teacher * F.log_softmax(student.logits.float() / t, dim=-1)).sum(dim=-1).mean()
