"""Golden values for the masked-LM, regression and top-k losses, worked out by hand on tiny tensors:
the expected numbers are written with math.exp / math.log here, never by calling the code under test.
Each loss is built by its recipe name and fed a `StudentOutput` and a `TeacherBatch` as the trainer does."""

from __future__ import annotations

import math

import pytest
import torch

from distill.losses import build_loss
from distill.students.output import StudentOutput
from distill.teacher_batch import TeacherBatch

NAN = float("nan")


def _softmax(row: list[float], t: float = 1.0) -> list[float]:
    e = [math.exp(x / t) for x in row]
    return [v / sum(e) for v in e]


def _bucket_kl(p: list[float], q: list[float]) -> float:
    """KL over the k given outcomes plus one tail outcome holding the rest of each distribution's mass."""
    tail_p, tail_q = 1 - sum(p), 1 - sum(q)
    return sum(a * math.log(a / b) for a, b in zip(p, q)) + tail_p * math.log(tail_p / tail_q)


def _masked_lm_batch(**tensors) -> TeacherBatch:
    """Two sequences with masked positions [[1, 3], [2, pad]]: three predictions, row-major."""
    return TeacherBatch({"attention_mask": torch.ones(2, 5, dtype=torch.long),
                         "mlm_positions": torch.tensor([[1, 3], [2, -1]]), **tensors}, num_layers=2)


def test_mlm_ce_is_mean_cross_entropy_on_the_true_tokens_of_masked_positions():
    teacher = _masked_lm_batch(mlm_labels=torch.tensor([[0, 2], [1, 2]]))  # the padding slot's 2 must not count
    student = StudentOutput(None, 2, mlm_logits=torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]]))
    # -log softmax(row)[label]: log Σ exp(row) − row[label]
    expected = ((math.log(math.exp(2) + 2) - 2)  # label 0 of [2, 0, 0]
                + (math.log(2 + math.e) - 0)  # label 2 of [0, 1, 0]
                + math.log(3)) / 3  # label 1 of [1, 1, 1]
    assert build_loss("mlm_ce")(student, teacher).item() == pytest.approx(expected, rel=1e-6)


def test_mlm_ce_without_masked_positions_is_zero_and_differentiable():
    teacher = TeacherBatch({"mlm_positions": torch.full((2, 2), -1), "mlm_labels": torch.zeros(2, 2, dtype=torch.long)},
                           num_layers=2)
    logits = torch.zeros(0, 3, requires_grad=True)
    loss = build_loss("mlm_ce")(StudentOutput(None, 2, mlm_logits=logits), teacher)
    assert loss.item() == 0.0 and loss.requires_grad


# Four rows: an original with gold 0.5, an augmented row (its inherited gold 2.0 is stale), an
# original without a gold score (NaN), an original with gold 4.0. Teacher scores 0, 1, 3, 2.5.
GOLD = dict(labels=torch.tensor([0.5, 2.0, NAN, 4.0]), aug_index=torch.tensor([0, 1, 0, 0]),
            logits=torch.tensor([[0.0], [1.0], [3.0], [2.5]]))
SCORES = torch.tensor([[1.0], [0.0], [2.0], [4.0]])


@pytest.mark.parametrize("augmented, expected", [
    ("teacher", ((1 - 0.5) ** 2 + (0 - 1) ** 2 + (2 - 3) ** 2 + (4 - 4) ** 2) / 4),  # rows 1, 2 take the teacher's
    ("skip", ((1 - 0.5) ** 2 + (4 - 4) ** 2) / 2),  # only the originals with a gold score
])
def test_gold_mse_against_gold_scores_with_teacher_or_skipped_rows(augmented, expected):
    teacher = TeacherBatch({"attention_mask": torch.ones(4, 3, dtype=torch.long), **GOLD}, num_layers=2)
    loss = build_loss("gold_mse", {"augmented": augmented})(StudentOutput(SCORES, 2), teacher)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_gold_mse_with_nothing_to_score_is_zero():
    teacher = TeacherBatch({"labels": torch.tensor([NAN, 1.0]), "aug_index": torch.tensor([0, 2]),
                            "logits": torch.tensor([[0.0], [0.0]])}, num_layers=2)
    student = StudentOutput(torch.tensor([[3.0], [5.0]], requires_grad=True), 2)
    loss = build_loss("gold_mse", {"augmented": "skip"})(student, teacher)
    assert loss.item() == 0.0 and loss.requires_grad


# Teacher logits over a 4-word vocabulary at the three masked positions, top-2 cached at T = 2
# (values z_i, indices, lse = log Σ_j exp(z_j / 2)); the padding slot holds junk that must not count.
MLM_TEACHER = [[2.0, 1.0, 0.0, 0.0], [0.0, 3.0, 1.0, -1.0], [1.0, 0.5, 2.0, 0.0]]
MLM_TOP = [[0, 1], [1, 2], [2, 0]]
MLM_STUDENT = [[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 2.0, 0.0], [0.0, 1.0, 0.0, -1.0]]


def _lse(row: list[float], t: float) -> float:
    return math.log(sum(math.exp(z / t) for z in row))


def test_mlm_kd_is_t_squared_bucket_kl_at_the_masked_positions():
    t = 2.0
    values = [[row[i] for i in top] for row, top in zip(MLM_TEACHER, MLM_TOP)]
    lse = [_lse(row, t) for row in MLM_TEACHER]
    junk = ([3, 3], [9.0, 9.0], 0.0)
    teacher = _masked_lm_batch(topk_indices=torch.tensor([[MLM_TOP[0], MLM_TOP[1]], [MLM_TOP[2], junk[0]]]),
                               topk_logits=torch.tensor([[values[0], values[1]], [values[2], junk[1]]]),
                               topk_logsumexp=torch.tensor([[lse[0], lse[1]], [lse[2], junk[2]]]))
    teacher.topk_temperature = t
    expected = 0.0
    for z, top, s in zip(MLM_TEACHER, MLM_TOP, MLM_STUDENT):
        p = [math.exp(z[i] / t - _lse(z, t)) for i in top]  # the teacher's exact top-2 probabilities at T
        q = [_softmax(s, t)[i] for i in top]
        expected += _bucket_kl(p, q)
    expected = expected / 3 * t * t
    student = StudentOutput(None, 2, mlm_logits=torch.tensor(MLM_STUDENT))
    assert build_loss("mlm_kd")(student, teacher).item() == pytest.approx(expected, rel=1e-5)


# A 5-class classifier, top-2 cached: two examples.
CLASS_TEACHER = [[3.0, 0.0, 1.0, 0.0, -1.0], [0.0, 0.0, 0.5, 2.0, 1.0]]
CLASS_TOP = [[0, 2], [3, 4]]
CLASS_STUDENT = [[1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0, 0.0]]


def _class_batch(t: float) -> TeacherBatch:
    values = [[row[i] for i in top] for row, top in zip(CLASS_TEACHER, CLASS_TOP)]
    batch = TeacherBatch({"topk_indices": torch.tensor(CLASS_TOP), "topk_logits": torch.tensor(values),
                          "topk_logsumexp": torch.tensor([_lse(row, t) for row in CLASS_TEACHER])}, num_layers=2)
    batch.topk_temperature = t
    return batch


@pytest.mark.parametrize("t", [1.0, 2.0])
def test_topk_kd_bucket_is_t_squared_kl_with_a_tail_outcome(t):
    expected = sum(_bucket_kl([_softmax(z, t)[i] for i in top], [_softmax(s, t)[i] for i in top])
                   for z, top, s in zip(CLASS_TEACHER, CLASS_TOP, CLASS_STUDENT)) / 2 * t * t
    loss = build_loss("topk_kd", {"temperature": t})(StudentOutput(torch.tensor(CLASS_STUDENT), 2), _class_batch(t))
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_topk_kd_renormalize_compares_the_top_k_only_at_any_temperature():
    t = 3.0  # not the cache's temperature (1): fine without a tail bucket
    expected = 0.0
    for z, top, s in zip(CLASS_TEACHER, CLASS_TOP, CLASS_STUDENT):
        p, q = _softmax([z[i] for i in top], t), _softmax([s[i] for i in top], t)
        expected += sum(a * math.log(a / b) for a, b in zip(p, q))
    loss = build_loss("topk_kd", {"temperature": t, "tail": "renormalize"})(
        StudentOutput(torch.tensor(CLASS_STUDENT), 2), _class_batch(1.0))
    assert loss.item() == pytest.approx(expected / 2 * t * t, rel=1e-5)
    with pytest.raises(ValueError, match=r"temperature 3 differs from the cache's topk_temperature 1"):
        build_loss("topk_kd", {"temperature": t})(StudentOutput(torch.tensor(CLASS_STUDENT), 2), _class_batch(1.0))
