"""DistilBERT's masked-LM terms (Sanh et al. 2019) at a corpus cache's masked positions: `mlm_kd` against the
teacher's cached top-k at T = 2 (`alpha_ce`), `mlm_ce` on the true tokens (`alpha_mlm`). With `cosine` they
make DistilBERT's triple loss (pipelines/configs/students/distilbert_general.yaml)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from distill.common.config_io import NonNegativeFloat, PositiveFloat
from distill.losses.registry import Loss, register_loss
from distill.losses.topk import TopKOptions


def _masked_logits(student) -> torch.Tensor:
    if student.mlm_logits is None:
        raise ValueError("this student has no masked-LM head (the cache's teacher must be a masked LM)")
    return student.mlm_logits


@register_loss("mlm_kd")
@dataclass
class MaskedLMDistillation(TopKOptions):
    temperature: PositiveFloat = 2.0  # DistilBERT
    reads = ("mlm_topk",)

    def __call__(self, student, teacher) -> torch.Tensor:
        return self.kl(_masked_logits(student), teacher, teacher.masked_positions)


@register_loss("mlm_ce")
@dataclass
class MaskedLMCrossEntropy(Loss):
    weight: NonNegativeFloat = 1.0
    reads = ("mlm",)

    def __call__(self, student, teacher) -> torch.Tensor:
        labels = teacher.tensors["mlm_labels"][teacher.masked_positions]
        logits = _masked_logits(student)
        if labels.numel() == 0:
            return logits.sum() * 0.0
        return F.cross_entropy(logits.float(), labels.long())
