"""Dev-set metrics: the task's metrics (`distill.metrics`) on a model's predictions, and examples/s.

Classification predictions are the argmax class; a regression model's (one output) are its score;
a token dev set (one with `tag_names`) is scored per sentence on the tags of its real words.
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
    """`model_fn(tensors) -> logits` ([B, labels], or [B, W, labels] at word starts for a token dev
    set); returns {metric: value, ..., "examples_per_second": ...}."""
    if task == "token_classification":
        return evaluate_tokens(model_fn, batches, device, metrics)
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


@torch.inference_mode()
def evaluate_tokens(model_fn, dev, device: str, metrics: Sequence[str]) -> dict[str, float]:
    """Per-word argmax against the gold tags of each sentence's real words, scored by tag name."""
    names = dev.tag_names
    predicted, gold, rows = [], [], 0
    started = time.perf_counter()
    for batch in dev:
        tensors = {k: v.to(device) for k, v in batch.items() if k != "labels"}
        pred = model_fn(tensors).argmax(dim=-1).cpu()
        for row_pred, row_gold in zip(pred.tolist(), batch["labels"].tolist()):
            pairs = [(p, g) for p, g in zip(row_pred, row_gold) if g != -100]
            predicted.append([names[p] for p, _ in pairs])
            gold.append([names[g] for _, g in pairs])
        rows += len(batch["labels"])
    seconds = time.perf_counter() - started
    return {**compute_metrics(metrics, predicted, gold, "token_classification"),
            "examples_per_second": rows / max(seconds, 1e-9)}


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
