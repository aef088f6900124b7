"""BERT-PKD (Sun et al. 2019) patient loss: MSE between L2-normalised [CLS] states of student
layer j and teacher layer I(j). PKD-Skip maps a 6-layer student to teacher layers {2,4,6,8,10}
of 12, PKD-Last to {7,...,11}; the last layer is left to the KD loss. β = 500 in the reference
recipe (here: `weight`), with the mean taken over batch, layers and hidden units."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from distill.losses.registry import Loss, map_layers, register_loss
from distill.common.config_io import NonNegativeFloat, NonNegativeInt


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
