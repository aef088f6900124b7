"""Losses between student and teacher logits (over a token task's real words only).

- `kd`: Hinton et al. (2015), KL(softmax(z_t / T) || softmax(z_s / T)) · T², T = 2 by default (DistilBERT).
- `soft_ce`: TinyBERT's prediction-layer loss, −Σ softmax(z_t/T) · log softmax(z_s/T).
- `logit_mse`: Tang et al. (2019) eq. 2, mean squared logit error (`nn.MSELoss`, as the reference code).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from distill.common.config_io import NonNegativeFloat, PositiveFloat
from distill.losses.registry import Loss, per_word, register_loss
from distill.losses.topk import full_kl


@dataclass
class _LogitLoss(Loss):
    weight: NonNegativeFloat = 1.0
    reads = ("logits", "classes")  # a softmax over one output is constant: no signal for regression

    def __call__(self, student, teacher) -> torch.Tensor:
        student_logits, teacher_logits = per_word(student.logits, teacher.logits, teacher)
        if not len(student_logits):
            return student.logits.sum() * 0.0
        return self.compare(student_logits.float(), teacher_logits.float())


@register_loss("kd")
@dataclass
class KLDivergence(_LogitLoss):
    temperature: PositiveFloat = 2.0

    def compare(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return full_kl(student, teacher, self.temperature)


@register_loss("soft_ce")
@dataclass
class SoftCrossEntropy(_LogitLoss):
    temperature: PositiveFloat = 1.0

    def compare(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        return -(F.softmax(teacher / t, dim=-1) * F.log_softmax(student / t, dim=-1)).sum(dim=-1).mean()


@register_loss("logit_mse")
@dataclass
class LogitMSE(_LogitLoss):
    reads = ("logits",)

    def compare(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(student, teacher)
