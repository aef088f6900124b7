"""KD against a teacher's top-k targets, for label spaces too large to store whole (a masked LM's
30 522-word vocabulary, classifiers with many labels).

The cache holds, per prediction, the teacher's k largest logits z_i, their indices, and
lse = log Σ_j exp(z_j / T) over the full label space at the labelling temperature T. Two ways to
treat the V − k labels it does not hold (`tail`):

- `bucket` (default): the tail is one more outcome. The teacher's k probabilities are exact,
  p_i = exp(z_i / T − lse), and its tail mass is 1 − Σ p_i; the student's are its own softmax
  probabilities of the same k labels and 1 minus their sum. The loss is the KL divergence between
  these two (k + 1)-outcome distributions: a lower bound on the full KL (merging outcomes never
  increases a KL divergence), equal to it at k = V, and it still pushes the student's tail mass to
  the teacher's. It needs the cache's temperature.
- `renormalize`: both distributions restricted to the k labels and renormalised; works at any T,
  ignores how much mass the teacher left outside the k labels.

Both multiply by T² (Hinton et al. 2015), as the full-vocabulary `kd` loss does. Measured error
against full-vocabulary KD as k varies: tests/test_topk_kd.py and the README's bytes table.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

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
