"""Tang et al. (2019) eq. 2: ||z_t − z_s||² on logits, which they found slightly better than KD
with soft labels. Mean over batch and classes (`nn.MSELoss`, as the reference code); token tasks
average over real words and classes."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from distill.losses.registry import Loss, per_word, register_loss
from distill.common.config_io import NonNegativeFloat


@register_loss("logit_mse")
@dataclass
class LogitMSE(Loss):
    weight: NonNegativeFloat = 1.0

    def __call__(self, student, teacher) -> torch.Tensor:
        student_logits, teacher_logits = per_word(student.logits, teacher.logits, teacher)
        if not len(student_logits):
            return student.logits.sum() * 0.0
        return F.mse_loss(student_logits.float(), teacher_logits.float())
