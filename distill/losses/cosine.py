"""DistilBERT cosine loss: 1 − cos(h_s, h_t) between last-layer token states, averaged over
real tokens (Sanh et al. 2019; `nn.CosineEmbeddingLoss` with target 1 in the reference)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from distill.losses.registry import Loss, register_loss
from distill.common.config_io import NonNegativeFloat, NonNegativeInt


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
