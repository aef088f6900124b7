"""Tang et al. (2019) eq. 2: ||z_t − z_s||² on logits, which they found slightly better than KD
with soft labels. Mean over batch and classes (`nn.MSELoss`, as the reference code)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from distill.losses.registry import Loss, register_loss
from distill.common.config_io import NonNegativeFloat


@register_loss("logit_mse")
@dataclass
class LogitMSE(Loss):
    weight: NonNegativeFloat = 1.0

    def __call__(self, student, teacher) -> torch.Tensor:
        return F.mse_loss(student.logits.float(), teacher.logits.float())
