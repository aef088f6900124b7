"""TinyBERT hidden-state loss: Σ_i MSE(H_s(i) · W_h, H_t(g(i))) over real tokens (Jiao et al.
2020, eq. 8), with the uniform map g(i) = i · L / k unless `teacher_layers` is given."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from distill.losses.registry import Loss, map_layers, masked_mse, register_loss
from distill.common.config_io import NonNegativeFloat, NonNegativeInt


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
