"""Task metrics by name, as GLUE and CoNLL report them: functions of (predictions, gold). Which apply,
and the headline, is the task's (`distill.tasks`); a recipe's `metrics:` or `--metrics` picks any."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from distill.metrics.token import TOKEN_METRICS
from distill.tasks import get_task

MetricFn = Callable[[Any, Any], float]


def _sklearn(name: str, **options) -> MetricFn:
    def metric(pred, gold) -> float:
        from sklearn import metrics

        return float(getattr(metrics, name)(gold, pred, **options))

    return metric


def _correlation(kind: str) -> MetricFn:
    def metric(pred, gold) -> float:
        from scipy import stats

        pred, gold = np.asarray(pred, dtype=np.float64), np.asarray(gold, dtype=np.float64)
        if len(pred) < 2 or np.all(pred == pred[0]) or np.all(gold == gold[0]):
            return float("nan")  # undefined for a constant series (scipy warns and returns nan too)
        result = stats.pearsonr(pred, gold) if kind == "pearson" else stats.spearmanr(pred, gold)
        return float(result[0])

    return metric


METRICS: dict[str, MetricFn] = {
    "accuracy": _sklearn("accuracy_score"),
    "f1": _sklearn("f1_score", pos_label=1, average="binary", zero_division=0),
    "macro_f1": _sklearn("f1_score", average="macro", zero_division=0),
    "mcc": _sklearn("matthews_corrcoef"),
    "pearson": _correlation("pearson"),
    "spearman": _correlation("spearman"),
    "mse": _sklearn("mean_squared_error"),
    **TOKEN_METRICS,
}
LOWER_IS_BETTER = {"mse"}  # every other metric: higher is better


def improves(name: str, value: float, best: float | None) -> bool:
    """Whether `value` of metric `name` beats `best` (None: nothing yet; NaN never improves)."""
    if value != value:
        return False
    if best is None:
        return True
    return value < best if name in LOWER_IS_BETTER else value > best


def default_metrics(task: str, num_labels: int = 2) -> list[str]:
    """The metrics papers report for this task shape (first = headline)."""
    return get_task(task).default_metrics(num_labels)


def check_metrics(names: Sequence[str], task: str) -> list[str]:
    """`names` if each is known and fits `task`; else a ValueError naming the ones that do."""
    fits = sorted(get_task(task).metrics)
    for name in names:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r} (known for {task}: {', '.join(fits)})")
        if name not in fits:
            raise ValueError(f"metric {name!r} does not apply to {task} (use one of: {', '.join(fits)})")
    return list(names)


def compute_metrics(names: Sequence[str], predictions, gold, task: str) -> dict[str, float]:
    """{name: value} for the scored examples."""
    return {name: METRICS[name](predictions, gold) for name in check_metrics(names, task)}
