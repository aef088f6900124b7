"""KD from a classifier's cached top-k logits (`--features topk`), for heads with many labels:
the same top-k path as the masked-LM loss (`distill.losses.topk`), one prediction per example."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from distill.common.config_io import NonNegativeFloat, PositiveFloat
from distill.losses.registry import Loss, register_loss
from distill.losses.topk import TAILS, topk_kl


def check_tail_temperature(loss_name: str, tail: str, temperature: float, cached: float) -> None:
    """A tail bucket needs the normaliser at the loss's own temperature, which the cache fixed."""
    if tail == "bucket" and abs(temperature - cached) > 1e-9:
        raise ValueError(f"{loss_name}: temperature {temperature:g} differs from the cache's topk_temperature "
                         f"{cached:g}; use temperature {cached:g}, tail: renormalize, or relabel with "
                         f"--set label.topk_temperature={temperature:g}")


@dataclass
class _TopKOptions(Loss):
    weight: NonNegativeFloat = 1.0
    temperature: PositiveFloat = 1.0
    tail: Literal["bucket", "renormalize"] = "bucket"

    def __post_init__(self) -> None:
        if self.tail not in TAILS:
            raise ValueError(f"tail must be one of {', '.join(TAILS)}, not {self.tail!r}")


@register_loss("topk_kd")
@dataclass
class TopKDistillation(_TopKOptions):
    def needs(self, student_layers: int, teacher_layers: int) -> dict[str, list[int]]:
        return {"class_topk": []}

    def __call__(self, student, teacher) -> torch.Tensor:
        check_tail_temperature("topk_kd", self.tail, self.temperature, teacher.topk_temperature)
        t = teacher.tensors
        return topk_kl(student.logits, t["topk_indices"], t["topk_logits"], t.get("topk_logsumexp"), self.temperature,
                       self.tail)
