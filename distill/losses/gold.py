"""Losses against gold labels. Augmented rows' inherited labels may be wrong, so by default they take the
teacher's prediction instead (Tang et al. 2019 §3); `skip` leaves them out, `gold` trusts them.
`ce`: cross-entropy on class ids (per real word for token tasks); `gold_mse`: regression on gold scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from distill.common.config_io import NonNegativeFloat
from distill.losses.registry import Loss, register_loss


@register_loss("ce")
@dataclass
class CrossEntropy(Loss):
    weight: NonNegativeFloat = 1.0
    augmented: Literal["teacher", "skip", "gold"] = "teacher"

    def needs(self, student_layers: int, teacher_layers: int) -> dict[str, list[int]]:
        return {"classes": [], **({"predictions": []} if self.augmented == "teacher" else {})}

    def targets(self, teacher) -> torch.Tensor:
        labels = teacher.tensors["labels"].clone()
        augmented = teacher.tensors["aug_index"] > 0
        if teacher.per_word:  # [B, W]: a row's flag for each of its words; padding words stay -100
            augmented = augmented[:, None].expand_as(labels) & teacher.word_mask
        if self.augmented == "teacher":
            replace = augmented | (labels < 0)  # also unlabelled originals
            if teacher.per_word:
                replace &= teacher.word_mask
            labels[replace] = teacher.predictions()[replace]
        elif self.augmented == "skip":
            labels[augmented] = -100
        return labels

    def __call__(self, student, teacher) -> torch.Tensor:
        targets = self.targets(teacher)
        if (targets >= 0).sum() == 0:
            return student.logits.sum() * 0.0
        logits = student.logits.float()
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)


@register_loss("gold_mse")
@dataclass
class GoldMSE(Loss):
    weight: NonNegativeFloat = 1.0
    augmented: Literal["teacher", "skip"] = "teacher"
    reads = ("score",)

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
