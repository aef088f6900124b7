"""Sequence classification (SST-2, MNLI): a class per example or sentence pair."""

from __future__ import annotations

from typing import Any

from distill.tasks.base import Classifier


class SequenceClassification(Classifier):
    name = head = "classification"
    auto_class = "AutoModelForSequenceClassification"
    noun = "sequence classifier"
    problem_type = "single_label_classification"
    online = True
    topk_layout = "fixed"
    metrics = ("accuracy", "f1", "macro_f1", "mcc")

    def topk(self, config: Any, dims: Any) -> int | None:
        return min(config.topk, dims.num_labels) if config.wants("topk") else None

    def default_metrics(self, num_labels: int) -> list[str]:
        return ["accuracy", "f1"] if num_labels == 2 else ["accuracy", "macro_f1"]
