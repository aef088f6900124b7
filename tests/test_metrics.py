"""Task metrics against values computed by hand on fixed predictions."""

from __future__ import annotations

import math

import pytest

from distill.metrics import check_metrics, compute_metrics, default_metrics

# 8 binary predictions: TP = 3 (rows 0, 1, 2), FN = 1 (row 3), FP = 1 (row 4), TN = 3 (rows 5-7)
GOLD = [1, 1, 1, 1, 0, 0, 0, 0]
PRED = [1, 1, 1, 0, 1, 0, 0, 0]


def test_binary_classification_metrics_match_hand_computed_values():
    values = compute_metrics(["accuracy", "f1", "mcc", "macro_f1"], PRED, GOLD, "classification")
    assert values["accuracy"] == pytest.approx(6 / 8)
    assert values["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))  # 2TP / (2TP + FP + FN) = 0.75
    # MCC = (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (9 − 1) / sqrt(4·4·4·4) = 0.5
    assert values["mcc"] == pytest.approx(0.5)
    assert values["macro_f1"] == pytest.approx(0.75)  # both classes have F1 0.75


def test_multiclass_macro_f1_averages_per_class_f1():
    gold = [0, 0, 1, 1, 2, 2]
    pred = [0, 1, 1, 1, 2, 0]
    # class 0: TP 1, FP 1, FN 1 -> 0.5; class 1: TP 2, FP 1, FN 0 -> 0.8; class 2: TP 1, FN 1 -> 2/3
    values = compute_metrics(["accuracy", "macro_f1"], pred, gold, "classification")
    assert values["accuracy"] == pytest.approx(4 / 6)
    assert values["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_regression_correlations_match_hand_computed_values():
    gold = [1.0, 2.0, 3.0, 4.0]
    pred = [1.0, 3.0, 2.0, 4.0]
    values = compute_metrics(["pearson", "spearman", "mse"], pred, gold, "regression")
    # deviations from the mean 2.5: (−1.5, −.5, .5, 1.5) and (−1.5, .5, −.5, 1.5): Σ products = 4, Σ squares = 5
    assert values["pearson"] == pytest.approx(4 / 5)
    assert values["spearman"] == pytest.approx(0.8)  # ranks equal the values here
    assert values["mse"] == pytest.approx(2 / 4)
    assert math.isnan(compute_metrics(["pearson"], [1.0, 1.0, 1.0], gold[:3], "regression")["pearson"])


def test_defaults_and_refusals_follow_the_task():
    assert default_metrics("classification", 2) == ["accuracy", "f1"]
    assert default_metrics("classification", 3) == ["accuracy", "macro_f1"]
    assert default_metrics("regression", 1) == ["pearson", "spearman"]
    with pytest.raises(ValueError, match="metric 'pearson' does not apply to classification"):
        check_metrics(["pearson"], "classification")
    with pytest.raises(ValueError, match="unknown metric 'acc'"):
        check_metrics(["acc"], "classification")
