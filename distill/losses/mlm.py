"""DistilBERT's masked-LM terms (Sanh et al. 2019), at the masked positions of a corpus cache.

- `mlm_kd`: soft-target KD over the vocabulary at T = 2 (the reference's `alpha_ce` term), against
  the teacher's cached top-k (the full 30 522-way distribution is never stored; see
  `distill.losses.topk` for how the tail is treated).
- `mlm_ce`: cross-entropy on the true tokens (`alpha_mlm`).
With `cosine` on the last hidden states these are DistilBERT's triple loss
(pipelines/recipes/students/distilbert_general.yaml: weights 5, 2, 1 as in its README run).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from distill.common.config_io import NonNegativeFloat, PositiveFloat
from distill.losses.registry import Loss, register_loss
from distill.losses.topk import topk_kl
from distill.losses.topk_kd import _TopKOptions, check_tail_temperature


def _masked_logits(student) -> torch.Tensor:
    if student.mlm_logits is None:
        raise ValueError("this student has no masked-LM head (the cache's teacher must be a masked LM)")
    return student.mlm_logits


@register_loss("mlm_kd")
@dataclass
class MaskedLMDistillation(_TopKOptions):
    temperature: PositiveFloat = 2.0  # DistilBERT

    def needs(self, student_layers: int, teacher_layers: int) -> dict[str, list[int]]:
        return {"mlm_topk": []}

    def __call__(self, student, teacher) -> torch.Tensor:
        check_tail_temperature("mlm_kd", self.tail, self.temperature, teacher.topk_temperature)
        real = teacher.masked_positions
        t = teacher.tensors
        lse = t["topk_logsumexp"][real] if "topk_logsumexp" in t else None
        return topk_kl(_masked_logits(student), t["topk_indices"][real], t["topk_logits"][real], lse,
                       self.temperature, self.tail)


@register_loss("mlm_ce")
@dataclass
class MaskedLMCrossEntropy(Loss):
    weight: NonNegativeFloat = 1.0

    def needs(self, student_layers: int, teacher_layers: int) -> dict[str, list[int]]:
        return {"mlm": []}

    def __call__(self, student, teacher) -> torch.Tensor:
        labels = teacher.tensors["mlm_labels"][teacher.masked_positions]
        logits = _masked_logits(student)
        if labels.numel() == 0:
            return logits.sum() * 0.0
        return F.cross_entropy(logits.float(), labels.long())
