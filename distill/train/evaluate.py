"""Dev-set metrics: the task's metrics (`distill.metrics`) on a model's predictions, and examples/s.

Classification predictions are the argmax class; a regression model's (one output) are its score.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from distill.metrics import compute_metrics


def predictions_of(logits: torch.Tensor, task: str) -> torch.Tensor:
    """What a metric scores: the score of a one-output regression model, else the argmax class."""
    return logits[:, 0].float() if task == "regression" else logits.argmax(dim=-1)


@torch.inference_mode()
def evaluate(model_fn, batches, device: str, task: str = "classification",
             metrics: Sequence[str] = ("accuracy", "f1")) -> dict[str, float]:
    """`model_fn(tensors) -> logits`; returns {metric: value, ..., "examples_per_second": ...}."""
    predictions, gold, rows = [], [], 0
    started = time.perf_counter()
    for batch in batches:
        tensors = {k: v.to(device) for k, v in batch.items() if k != "labels"}
        predictions.append(predictions_of(model_fn(tensors), task).cpu())
        gold.append(batch["labels"])
        rows += len(batch["labels"])
    seconds = time.perf_counter() - started
    pred, gold_all = torch.cat(predictions).numpy(), torch.cat(gold).numpy()
    return {**compute_metrics(metrics, pred, gold_all, task), "examples_per_second": rows / max(seconds, 1e-9)}


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
