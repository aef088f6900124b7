"""Dev-set metrics: accuracy, F1 of the positive class for binary tasks, and examples/s."""

from __future__ import annotations

import time

import torch


@torch.inference_mode()
def evaluate(model_fn, batches, device: str) -> dict[str, float]:
    """`model_fn(tensors) -> logits`."""
    predictions, gold, rows = [], [], 0
    started = time.perf_counter()
    for batch in batches:
        tensors = {k: v.to(device) for k, v in batch.items() if k != "labels"}
        predictions.append(model_fn(tensors).argmax(dim=-1).cpu())
        gold.append(batch["labels"])
        rows += len(batch["labels"])
    seconds = time.perf_counter() - started
    pred, gold_all = torch.cat(predictions), torch.cat(gold)
    metrics = {"accuracy": (pred == gold_all).float().mean().item(), "examples_per_second": rows / max(seconds, 1e-9)}
    if int(gold_all.max()) <= 1:
        tp = int(((pred == 1) & (gold_all == 1)).sum())
        fp = int(((pred == 1) & (gold_all == 0)).sum())
        fn = int(((pred == 0) & (gold_all == 1)).sum())
        metrics["f1"] = 2 * tp / max(2 * tp + fp + fn, 1)
    return metrics


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
