"""Cross-entropy on gold labels. Augmented rows carry the source's gold label, which the
augmentation may have changed, so by default they take the teacher's argmax instead (Tang et
al. 2019 §3: "t is provided by the true label or the teacher's prediction"); `skip` ignores
them, `gold` trusts the inherited label. Token tasks do the same per word (an augmented row's
words take the teacher's per-word argmax) and average over real words only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from distill.losses.registry import Loss, register_loss
from distill.common.config_io import NonNegativeFloat


@register_loss("ce")
@dataclass
class CrossEntropy(Loss):
    weight: NonNegativeFloat = 1.0
    augmented: Literal["teacher", "skip", "gold"] = "teacher"

    def __post_init__(self) -> None:
        if self.augmented not in ("teacher", "skip", "gold"):
            raise ValueError(f"ce.augmented must be teacher, skip or gold, not {self.augmented!r}")

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
        if logits.dim() == 3:  # token task: [B, W, C] against [B, W]
            logits, targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
        return F.cross_entropy(logits, targets, ignore_index=-100)
