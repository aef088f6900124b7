"""Dev-set metrics: accuracy, F1 of the positive class for binary tasks, and examples/s; for token
tasks entity-level F1 / precision / recall (seqeval) and token accuracy over the scored words."""

from __future__ import annotations

import time

import torch


@torch.inference_mode()
def evaluate(model_fn, batches, device: str) -> dict[str, float]:
    """`model_fn(tensors) -> logits` ([B, labels], or [B, W, labels] at word starts for a token dev set)."""
    if getattr(batches, "tag_names", None):
        return evaluate_tokens(model_fn, batches, device)
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


@torch.inference_mode()
def evaluate_tokens(model_fn, dev, device: str) -> dict[str, float]:
    """Per-word argmax against the gold tags of each sentence's real words, scored by name."""
    from distill.metrics import compute_metrics, default_metrics

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
    task = "token_classification"
    return {**compute_metrics(default_metrics(task), predicted, gold, task), "examples_per_second": rows / max(seconds, 1e-9)}


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
