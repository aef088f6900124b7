"""Task metrics, chosen by task: what GLUE and CoNLL report, computed by scikit-learn, scipy and seqeval.

A metric is a function of (predictions, gold) over the scored examples:
- classification: class ids (argmax of the logits) against gold ids;
- regression: the model's score against the gold score (floats);
- token classification: per-sentence tag-name sequences against gold ones (seqeval, entity level).

`default_metrics(task, num_labels)` gives the task's usual set: accuracy + F1 of class 1 for two
classes (SST-2, MRPC, QQP), accuracy + macro F1 for more (MNLI), Pearson + Spearman for one output
(STS-B), entity F1 / precision / recall + token accuracy for tagging (CoNLL-2003). Matthews
correlation (CoLA) is asked for by name. A recipe's `metrics:` or the evaluate command's
`--metrics` picks any of them; the first one listed is the run's headline metric.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

TASKS = ("classification", "regression", "token_classification")
MetricFn = Callable[[Any, Any], float]


def _accuracy(pred, gold) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(gold, pred))


def _f1(pred, gold) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(gold, pred, pos_label=1, average="binary", zero_division=0))


def _macro_f1(pred, gold) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(gold, pred, average="macro", zero_division=0))


def _mcc(pred, gold) -> float:
    from sklearn.metrics import matthews_corrcoef

    return float(matthews_corrcoef(gold, pred))


def _correlation(kind: str) -> MetricFn:
    def metric(pred, gold) -> float:
        from scipy import stats

        pred, gold = np.asarray(pred, dtype=np.float64), np.asarray(gold, dtype=np.float64)
        if len(pred) < 2 or np.all(pred == pred[0]) or np.all(gold == gold[0]):
            return float("nan")  # undefined for a constant series (scipy warns and returns nan too)
        result = stats.pearsonr(pred, gold) if kind == "pearson" else stats.spearmanr(pred, gold)
        return float(result[0])

    return metric


def _mse(pred, gold) -> float:
    from sklearn.metrics import mean_squared_error

    return float(mean_squared_error(gold, pred))


# name -> (the tasks it applies to, the function)
METRICS: dict[str, tuple[tuple[str, ...], MetricFn]] = {
    "accuracy": (("classification",), _accuracy),
    "f1": (("classification",), _f1),
    "macro_f1": (("classification",), _macro_f1),
    "mcc": (("classification",), _mcc),
    "pearson": (("regression",), _correlation("pearson")),
    "spearman": (("regression",), _correlation("spearman")),
    "mse": (("regression",), _mse),
}


LOWER_IS_BETTER = {"mse"}  # every other metric: higher is better


def register_metric(name: str, tasks: tuple[str, ...], fn: MetricFn, lower_is_better: bool = False) -> None:
    METRICS[name] = (tasks, fn)
    if lower_is_better:
        LOWER_IS_BETTER.add(name)


def improves(name: str, value: float, best: float | None) -> bool:
    """Whether `value` of metric `name` beats `best` (None: nothing yet; NaN never improves)."""
    if value != value:
        return False
    if best is None:
        return True
    return value < best if name in LOWER_IS_BETTER else value > best


def default_metrics(task: str, num_labels: int = 2) -> list[str]:
    """The metrics papers report for this task shape (first = headline)."""
    if task == "regression":
        return ["pearson", "spearman"]
    if task == "token_classification":
        return ["entity_f1", "entity_precision", "entity_recall", "token_accuracy"]
    return ["accuracy", "f1"] if num_labels == 2 else ["accuracy", "macro_f1"]


def check_metrics(names: Sequence[str], task: str) -> list[str]:
    """`names` if each is known and fits `task`; else a ValueError naming the ones that do."""
    fits = sorted(n for n, (tasks, _) in METRICS.items() if task in tasks)
    for name in names:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r} (known for {task}: {', '.join(fits)})")
        if task not in METRICS[name][0]:
            raise ValueError(f"metric {name!r} does not apply to {task} (use one of: {', '.join(fits)})")
    return list(names)


def compute_metrics(names: Sequence[str], predictions, gold, task: str) -> dict[str, float]:
    """{name: value} for the scored examples."""
    return {name: METRICS[name][1](predictions, gold) for name in check_metrics(names, task)}


from distill.metrics import token as _token  # noqa: E402  (entity F1 / precision / recall, token accuracy)

_token.register()
