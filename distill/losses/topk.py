"""KD against a teacher's top-k targets, for label spaces too large to store whole (a masked LM's vocabulary).

The cache holds the k largest logits, their indices and lse = log Σ_j exp(z_j / T) over the full space.
`tail: bucket` (default) adds the tail mass as one more outcome: a lower bound on the full KL, exact at k = V,
that still matches the student's tail mass to the teacher's (needs the cache's T). `renormalize` restricts both
to the k labels, at any T. Both multiply by T². Error against full KD: tests/test_topk_kd.py.
`topk_kd` is that loss for a classifier's cached top-k, one prediction per example.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from distill.common.config_io import NonNegativeFloat, PositiveFloat
from distill.losses.registry import Loss, register_loss

TAILS = ("bucket", "renormalize")
_EDGE = 1e-6  # keeps log(1 − mass) finite when a distribution puts (nearly) all its mass on the k labels


def _log_tail(log_mass: torch.Tensor) -> torch.Tensor:
    """log(1 − exp(log_mass)) for log_mass ≤ 0, clamped so the tail never reaches exactly zero."""
    return torch.log(-torch.expm1(log_mass.clamp(max=-_EDGE)))


def topk_kl(student_logits: torch.Tensor, indices: torch.Tensor, teacher_logits: torch.Tensor,
            teacher_logsumexp: torch.Tensor | None, temperature: float, tail: str = "bucket") -> torch.Tensor:
    """Mean over N predictions of T² · KL(teacher ‖ student) on the top-k (+ tail) outcomes.

    `student_logits` [N, V]; `indices`, `teacher_logits` [N, k]; `teacher_logsumexp` [N] at
    `temperature` (bucket only)."""
    if tail not in TAILS:
        raise ValueError(f"tail must be one of {', '.join(TAILS)}, not {tail!r}")
    if student_logits.shape[0] == 0:
        return student_logits.sum() * 0.0
    t = temperature
    student_all = F.log_softmax(student_logits.float() / t, dim=-1)
    student_k = student_all.gather(-1, indices.long())
    if tail == "renormalize":
        teacher = F.log_softmax(teacher_logits.float() / t, dim=-1)
        student = F.log_softmax(student_k, dim=-1)
        kl = (teacher.exp() * (teacher - student)).sum(dim=-1)
    else:
        if teacher_logsumexp is None:
            raise ValueError("tail: bucket needs the teacher's log-normaliser (topk_logsumexp)")
        teacher_k = teacher_logits.float() / t - teacher_logsumexp.float()[:, None]
        teacher_k = teacher_k.clamp(max=0.0)  # float16 rounding of z may overshoot the exact normaliser
        teacher_tail = _log_tail(torch.logsumexp(teacher_k, dim=-1))
        student_tail = _log_tail(torch.logsumexp(student_k, dim=-1))
        kl = (teacher_k.exp() * (teacher_k - student_k)).sum(dim=-1) + teacher_tail.exp() * (teacher_tail - student_tail)
    return kl.mean() * t * t


def full_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The full-label-space reference: mean over N of T² · KL(softmax(z_t/T) ‖ softmax(z_s/T))."""
    t = temperature
    student = F.log_softmax(student_logits.float() / t, dim=-1)
    teacher = F.log_softmax(teacher_logits.float() / t, dim=-1)
    return F.kl_div(student, teacher, log_target=True, reduction="batchmean") * t * t


def check_tail_temperature(loss_name: str, tail: str, temperature: float, cached: float) -> None:
    """A tail bucket needs the normaliser at the loss's own temperature, which the cache fixed."""
    if tail == "bucket" and abs(temperature - cached) > 1e-9:
        raise ValueError(f"{loss_name}: temperature {temperature:g} differs from the cache's topk_temperature "
                         f"{cached:g}; use temperature {cached:g}, tail: renormalize, or relabel with "
                         f"--set label.topk_temperature={temperature:g}")


@dataclass
class TopKOptions(Loss):
    weight: NonNegativeFloat = 1.0
    temperature: PositiveFloat = 1.0
    tail: Literal["bucket", "renormalize"] = "bucket"

    def kl(self, student_logits: torch.Tensor, teacher, real: torch.Tensor | None = None) -> torch.Tensor:
        """`topk_kl` against the batch's top-k targets (at the `real` slots of per-masked columns)."""
        check_tail_temperature(self.name, self.tail, self.temperature, teacher.topk_temperature)
        t = {k: v if real is None else v[real] for k, v in teacher.tensors.items() if k.startswith("topk_")}
        return topk_kl(student_logits, t["topk_indices"], t["topk_logits"], t.get("topk_logsumexp"), self.temperature,
                       self.tail)


@register_loss("topk_kd")
@dataclass
class TopKDistillation(TopKOptions):
    reads = ("class_topk",)

    def __call__(self, student, teacher) -> torch.Tensor:
        return self.kl(student.logits, teacher)
