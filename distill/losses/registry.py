"""The loss registry and the small interface every loss implements."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from distill.common.registry import Registry

LOSSES = Registry("loss")
register_loss = LOSSES.register


class Loss:
    """Base of the loss dataclasses: `weight` scales the term in the recipe's weighted sum."""

    name = "loss"
    reads: ClassVar[tuple[str, ...]] = ("logits",)  # teacher features read at no particular layer

    def needs(self, student_layers: int, teacher_layers: int) -> dict[str, list[int]]:
        """Teacher features read from the batch: {"logits": []} or {"cls": [2, 4]}."""
        return {feature: [] for feature in self.reads}

    def student_attention(self, student_layers: int, teacher_layers: int) -> list[int]:
        """Student layers whose attention scores and values this loss reads (captured in the forward pass)."""
        return []

    def __call__(self, student, teacher) -> torch.Tensor:  # pragma: no cover
        """`student`: a `StudentOutput`; `teacher`: a `distill.teacher_batch.TeacherBatch`."""
        raise NotImplementedError


def build_loss(name: str, options: dict[str, Any] | None = None) -> Loss:
    return LOSSES.build(name, options)


def per_word(student: torch.Tensor, teacher_values: torch.Tensor, teacher) -> tuple[torch.Tensor, torch.Tensor]:
    """Token tasks: both [B, W, C] values at real words only, [N, C]; sequence tasks: unchanged."""
    if not teacher.per_word:
        return student, teacher_values
    mask = teacher.word_mask
    return student[mask], teacher_values[mask]


def masked_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the positions where `mask` is true (mask broadcasts over the trailing dims)."""
    while mask.dim() < student.dim():
        mask = mask.unsqueeze(-1)
    mask = mask.expand_as(student)
    diff = (student - teacher)[mask]
    return (diff * diff).mean() if diff.numel() else student.sum() * 0.0


def map_layers(student_layers: int, teacher_layers: int, teacher_map: list[int] | None) -> list[tuple[int, int]]:
    """(student layer, teacher layer) pairs, 1-based. Default: TinyBERT's uniform map i <- i * L / k."""
    if teacher_map is None:
        step = teacher_layers // student_layers
        return [(i, i * step) for i in range(1, student_layers + 1)]
    if len(teacher_map) > student_layers:
        raise ValueError(f"layer map {teacher_map} is longer than the student's {student_layers} layers")
    return [(i + 1, t) for i, t in enumerate(teacher_map)]
