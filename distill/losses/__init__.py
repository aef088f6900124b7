"""Distillation losses by recipe name: `loss(student, teacher)`, each declaring the teacher features it reads."""

from distill.losses import gold, layers, logits, mlm, relations, topk  # noqa: F401  (their @register_loss decorators run)
from distill.losses.registry import LOSSES, Loss, build_loss, register_loss

__all__ = ["LOSSES", "Loss", "build_loss", "register_loss"]
