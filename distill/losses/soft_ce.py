"""TinyBERT prediction-layer loss: soft cross-entropy −Σ softmax(z_t/T) · log softmax(z_s/T), T = 1
(over real words for token tasks)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from distill.losses.registry import Loss, per_word, register_loss
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
        student_logits, teacher_logits = per_word(student.logits, teacher.logits, teacher)
        if not len(student_logits):
            return student.logits.sum() * 0.0
        probs = F.softmax(teacher_logits.float() / t, dim=-1)
        return -(probs * F.log_softmax(student_logits.float() / t, dim=-1)).sum(dim=-1).mean()
