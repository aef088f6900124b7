"""Distillation losses, one module each, registered by the name a recipe uses.

Every loss is called as `loss(student, teacher)`: `student` is a `StudentOutput`, `teacher` a
`TeacherBatch` (padded tensors from the teacher cache, or from the teacher run online).
Each declares the teacher features it reads (`needs`), so a recipe is checked against a
cache before any training starts.
"""

from distill.losses.registry import LOSSES, Loss, build_loss, register_loss

# Import the modules so their @register_loss decorators run.
from distill.losses import ce, kd, logit_mse, pkd, tinybert_attention, tinybert_embedding, tinybert_hidden, soft_ce, cosine  # noqa: E402,F401,I001
from distill.losses import gold_mse, mlm, topk_kd  # noqa: E402,F401,I001

__all__ = ["LOSSES", "Loss", "build_loss", "register_loss"]
