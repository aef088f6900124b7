"""Regression (STS-B): a classifier head with one output is a score; gold scores stay float."""

from __future__ import annotations

from collections.abc import Sequence

from distill.tasks.sequence import SequenceClassification


class Regression(SequenceClassification):
    name = "regression"
    noun = "regression model"
    problem_type = "regression"
    scores = True
    metrics = ("pearson", "spearman", "mse")

    def gold(self, labels):
        """Integer gold (0/1 sentiment used as a score) as floats, NaN where none."""
        if labels.is_floating_point():
            return labels
        return labels.float().masked_fill(labels == -100, float("nan"))

    def default_metrics(self, num_labels: int) -> list[str]:
        return ["pearson", "spearman"]

    def scored(self, logits, gold, names: Sequence[str] | None = None) -> tuple[list, list]:
        return list(logits[:, 0].float().numpy()), list(gold.numpy())
