"""TinyBERT embedding loss: MSE(E_s · W_e, E_t) over real tokens (Jiao et al. 2020, eq. 9)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from distill.losses.registry import Loss, masked_mse, register_loss
from distill.common.config_io import NonNegativeFloat


@register_loss("tinybert_embedding")
@dataclass
class EmbeddingMSE(Loss):
    weight: NonNegativeFloat = 1.0

    def needs(self, student_layers: int, teacher_layers: int) -> dict[str, list[int]]:
        return {"embedding": []}

    def __call__(self, student, teacher) -> torch.Tensor:
        return masked_mse(student.projected_hidden(0).float(), teacher.hidden(0).float(), teacher.mask)
