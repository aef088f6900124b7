"""Regression (STS-B shape) against gold scores: mean squared error between the student's score
and the gold score on original rows. Augmented rows inherit their source's score, which the
augmentation may have changed, so by default they take the teacher's score instead (as `ce`
takes the teacher's class); `skip` leaves them out. The teacher's score on every row is
`logit_mse` (Tang et al. eq. 2 for one output)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from distill.common.config_io import NonNegativeFloat
from distill.losses.registry import Loss, register_loss


@register_loss("gold_mse")
@dataclass
class GoldMSE(Loss):
    weight: NonNegativeFloat = 1.0
    augmented: Literal["teacher", "skip"] = "teacher"

    def __post_init__(self) -> None:
        if self.augmented not in ("teacher", "skip"):
            raise ValueError(f"gold_mse.augmented must be teacher or skip, not {self.augmented!r}")

    def needs(self, student_layers: int, teacher_layers: int) -> dict[str, list[int]]:
        return {"score": []}

    def targets(self, teacher) -> torch.Tensor:
        """Gold scores, NaN where a row has none (or is augmented and `skip`); teacher scores where
        `teacher` fills augmented and unlabelled rows."""
        gold = teacher.tensors["labels"].float().clone()
        replace = (teacher.tensors["aug_index"] > 0) | torch.isnan(gold)
        gold[replace] = teacher.logits[:, 0].float()[replace] if self.augmented == "teacher" else float("nan")
        return gold

    def __call__(self, student, teacher) -> torch.Tensor:
        targets = self.targets(teacher)
        keep = ~torch.isnan(targets)
        if not keep.any():
            return student.logits.sum() * 0.0
        return F.mse_loss(student.logits[:, 0].float()[keep], targets[keep])
