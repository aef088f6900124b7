"""Hinton et al. (2015) KD: KL(softmax(z_t / T) || softmax(z_s / T)) · T², averaged over the batch
(over the batch's real words for token tasks).

T² keeps the gradient scale independent of T. Defaults follow BERT-PKD's reference (T = 10
with α = 0.7 against CE) only in recipes; the loss itself defaults to T = 2 (DistilBERT).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from distill.losses.registry import Loss, per_word, register_loss
from distill.common.config_io import NonNegativeFloat, PositiveFloat


@register_loss("kd")
@dataclass
class KLDivergence(Loss):
    weight: NonNegativeFloat = 1.0
    temperature: PositiveFloat = 2.0

    def needs(self, student_layers: int, teacher_layers: int) -> dict[str, list[int]]:
        return {"logits": [], "classes": []}  # a softmax over one output is constant: no signal for regression

    def __call__(self, student, teacher) -> torch.Tensor:
        t = self.temperature
        student_logits, teacher_logits = per_word(student.logits, teacher.logits, teacher)
        if not len(student_logits):
            return student.logits.sum() * 0.0
        student_log = F.log_softmax(student_logits.float() / t, dim=-1)
        teacher_log = F.log_softmax(teacher_logits.float() / t, dim=-1)
        return F.kl_div(student_log, teacher_log, log_target=True, reduction="batchmean") * t * t
