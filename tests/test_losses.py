"""Each loss against a hand computation on small tensors (golden values worked out here)."""

from __future__ import annotations

import math

import pytest
import torch

from distill.losses import build_loss
from distill.losses.registry import map_layers
from distill.students.output import StudentOutput
from distill.teacher_batch import TeacherBatch


def _teacher(**tensors) -> TeacherBatch:
    base = {"attention_mask": torch.tensor([[1, 1, 1], [1, 1, 0]]), "labels": torch.tensor([1, 0]),
            "aug_index": torch.tensor([0, 3]), "logits": torch.tensor([[1.0, 3.0], [2.0, 0.0]])}
    base.update(tensors)
    return TeacherBatch(base, num_layers=4, cls_layers=[1, 2, 3, 4])


STUDENT_LOGITS = torch.tensor([[0.0, 1.0], [1.0, 1.0]])


def test_kd_is_kl_of_softened_distributions_times_t_squared():
    t = 2.0
    loss = build_loss("kd", {"temperature": t})(StudentOutput(STUDENT_LOGITS, 1), _teacher())
    expected = 0.0
    for s_row, t_row in zip(STUDENT_LOGITS.tolist(), [[1.0, 3.0], [2.0, 0.0]]):
        ps = [math.exp(x / t) / sum(math.exp(y / t) for y in s_row) for x in s_row]
        pt = [math.exp(x / t) / sum(math.exp(y / t) for y in t_row) for x in t_row]
        expected += sum(p * math.log(p / q) for p, q in zip(pt, ps))
    assert loss.item() == pytest.approx(expected / 2 * t * t, rel=1e-5)


def test_logit_mse_and_soft_ce():
    student, teacher = StudentOutput(STUDENT_LOGITS, 1), _teacher()
    assert build_loss("logit_mse")(student, teacher).item() == pytest.approx((1 + 4 + 1 + 1) / 4)
    soft = build_loss("soft_ce")(student, teacher).item()
    expected = 0.0
    for s_row, t_row in zip(STUDENT_LOGITS.tolist(), [[1.0, 3.0], [2.0, 0.0]]):
        pt = [math.exp(x) / sum(math.exp(y) for y in t_row) for x in t_row]
        log_ps = [x - math.log(sum(math.exp(y) for y in s_row)) for x in s_row]
        expected -= sum(p * q for p, q in zip(pt, log_ps))
    assert soft == pytest.approx(expected / 2, rel=1e-5)


# Labels [1, 1] (row 1 is augmented, aug_index 3, and inherited its source's gold label 1); the
# teacher's logits [[1, 3], [2, 0]] have argmax [1, 0]. Row 0 is an original and keeps its label.
@pytest.mark.parametrize("mode, targets", [
    ("teacher", [1, 0]),  # the augmented row takes the teacher's argmax
    ("gold", [1, 1]),  # the augmented row keeps the inherited gold label
    ("skip", [1, -100]),  # the augmented row is ignored
])
def test_ce_targets_for_augmented_rows(mode, targets):
    teacher = _teacher(labels=torch.tensor([1, 1]))
    ce = build_loss("ce", {"augmented": mode})
    assert ce.targets(teacher).tolist() == targets
    student = [[0.0, 1.0], [2.0, -1.0]]  # row 1 not a tie, so its target changes the loss
    loss = ce(StudentOutput(torch.tensor(student), 1), teacher).item()
    # mean over the kept rows of -log softmax(z_s)[target]
    nll = [-math.log(math.exp(r[c]) / sum(math.exp(x) for x in r)) for r, c in zip(student, targets) if c >= 0]
    assert loss == pytest.approx(sum(nll) / len(nll), rel=1e-5)


def test_pkd_compares_normalised_cls_over_the_skip_map():
    torch.manual_seed(0)
    hidden = tuple(torch.randn(2, 3, 4) for _ in range(3))  # student: embeddings + 2 layers
    teacher_cls = torch.randn(2, 4, 4)  # 4 teacher layers, [CLS] of each
    loss = build_loss("pkd")(StudentOutput(STUDENT_LOGITS, 2, hidden), _teacher(cls=teacher_cls)).item()
    # PKD-Skip for k = 2 of L = 4: student layer 1 <- teacher layer 2 (the last layer is left to KD)
    s = hidden[1][:, 0] / hidden[1][:, 0].norm(dim=-1, keepdim=True)
    t = teacher_cls[:, 1] / teacher_cls[:, 1].norm(dim=-1, keepdim=True)
    assert loss == pytest.approx(((s - t) ** 2).mean().item(), rel=1e-5)


def test_tinybert_hidden_embedding_and_attention_are_masked_to_real_tokens():
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    student_hidden = tuple(torch.randn(2, 3, 2) for _ in range(3))
    w = torch.nn.Linear(2, 4)
    teacher_hidden = {f"hidden_{i}": torch.randn(2, 3, 4) for i in (2, 4)}
    teacher_hidden["embedding"] = torch.randn(2, 3, 4)
    student = StudentOutput(STUDENT_LOGITS, 2, student_hidden, project_embedding=w, project_layer=w)
    teacher = _teacher(attention_mask=mask, **teacher_hidden)
    real = mask.bool()
    with torch.no_grad():
        hidden = build_loss("tinybert_hidden")(student, teacher).item()
        expected = sum(((w(student_hidden[s])[real] - teacher_hidden[f"hidden_{t}"][real]) ** 2).mean().item()
                       for s, t in ((1, 2), (2, 4)))  # uniform map i <- 2i
        assert hidden == pytest.approx(expected, rel=1e-5)
        embedding = build_loss("tinybert_embedding")(student, teacher).item()
        assert embedding == pytest.approx(((w(student_hidden[0])[real] - teacher_hidden["embedding"][real]) ** 2).mean().item(), rel=1e-5)
    scores = {1: torch.randn(2, 2, 3, 3), 2: torch.randn(2, 2, 3, 3)}
    teacher_scores = {f"attention_{t}": torch.randn(2, 2, 3, 3) for t in (2, 4)}
    teacher_scores["attention_2"][1, :, 2, :] = 1e4  # padding rows/columns must not count
    teacher_scores["attention_4"][1, :, :, 2] = -1e4
    loss = build_loss("tinybert_attention")(StudentOutput(STUDENT_LOGITS, 2, scores=scores), _teacher(attention_mask=mask, **teacher_scores)).item()
    expected = 0.0
    for s, t in ((1, 2), (2, 4)):
        diffs = []
        for b, n in ((0, 3), (1, 2)):
            diffs.append(((scores[s][b, :, :n, :n] - teacher_scores[f"attention_{t}"][b, :, :n, :n]) ** 2).reshape(-1))
        expected += torch.cat(diffs).mean().item()
    assert loss == pytest.approx(expected, rel=1e-5)


def test_cosine_loss_on_last_layer_real_tokens():
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    student_hidden = (torch.randn(2, 3, 4), torch.randn(2, 3, 4))
    teacher = _teacher(attention_mask=mask, hidden_4=torch.randn(2, 3, 4))
    loss = build_loss("cosine")(StudentOutput(STUDENT_LOGITS, 1, student_hidden), teacher).item()
    real = mask.bool()
    cos = torch.nn.functional.cosine_similarity(student_hidden[1][real], teacher.tensors["hidden_4"][real], dim=-1)
    assert loss == pytest.approx((1 - cos).mean().item(), rel=1e-5)
    student_hidden[1][1, 2] = 1e6  # a padded position changes nothing
    assert build_loss("cosine")(StudentOutput(STUDENT_LOGITS, 1, student_hidden), teacher).item() == pytest.approx(loss, rel=1e-6)


def _softmax_kl(teacher_row: list[float], student_row: list[float]) -> float:
    """KL(softmax(teacher) || softmax(student)) of two score rows, in plain Python."""
    pt = [math.exp(x) / sum(math.exp(y) for y in teacher_row) for x in teacher_row]
    ps = [math.exp(x) / sum(math.exp(y) for y in student_row) for x in student_row]
    return sum(p * math.log(p / q) for p, q in zip(pt, ps))


def _dot_rows(vectors: list[list[float]], n: int) -> list[list[float]]:
    """u_i · u_j / sqrt(d) over the first n vectors."""
    return [[sum(a * b for a, b in zip(vectors[i], vectors[j])) / math.sqrt(len(vectors[0])) for j in range(n)]
            for i in range(n)]


def test_minilm_is_kl_of_attention_and_value_relations_over_real_tokens():
    """The teacher's layer-4 targets recomputed from hidden_3 with W_q = W_k = I, W_v = 2I (one head), the
    student's from its last layer (2 of 2: no layer map); the expected KLs are worked out in plain Python."""
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    inputs = [[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [0.5, -1.0], [5.0, 5.0]]]  # row 1 token 2: padding
    eye, zero = torch.eye(2), torch.zeros(2)
    weights = {4: {"query.weight": eye, "query.bias": zero, "key.weight": eye, "key.bias": zero,
                   "value.weight": 2 * eye, "value.bias": zero, "num_heads": 1}}
    teacher = TeacherBatch({"attention_mask": mask, "hidden_3": torch.tensor(inputs)}, num_layers=4,
                           attention_weights=weights)
    scores, values = torch.randn(2, 1, 3, 3), torch.randn(2, 1, 3, 2)
    student = StudentOutput(STUDENT_LOGITS, 2, scores={2: scores}, values={2: values})
    loss = build_loss("minilm")
    assert loss.needs(2, 4) == {"relation": [4]} and loss.student_attention(2, 4) == [2]
    expected_attention, expected_values, queries = 0.0, 0.0, 0
    for b, n in ((0, 3), (1, 2)):
        h = inputs[b]
        teacher_scores, teacher_values = _dot_rows(h, n), _dot_rows([[2 * x for x in v] for v in h], n)
        student_scores, student_values = scores[b, 0].tolist(), _dot_rows(values[b, 0].tolist(), n)
        for i in range(n):
            expected_attention += _softmax_kl(teacher_scores[i], student_scores[i][:n])
            expected_values += _softmax_kl(teacher_values[i], student_values[i])
            queries += 1
    expected = (expected_attention + expected_values) / queries
    assert loss(student, teacher).item() == pytest.approx(expected, rel=1e-5)
    scores[1, 0, :, 2], scores[1, 0, 2, :], values[1, 0, 2] = 1e4, -1e4, 1e3  # padding changes nothing
    assert loss(StudentOutput(STUDENT_LOGITS, 2, scores={2: scores}, values={2: values}), teacher).item() == \
        pytest.approx(expected, rel=1e-5)
    half = build_loss("minilm", {"value_weight": 0.5})(student, teacher).item()
    assert half == pytest.approx((expected_attention + 0.5 * expected_values) / queries, rel=1e-5)


def test_minilm_refuses_unequal_head_counts_and_a_cache_without_value_weights():
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    student = StudentOutput(STUDENT_LOGITS, 2, scores={2: torch.zeros(2, 2, 3, 3)}, values={2: torch.zeros(2, 2, 3, 1)})
    teacher = _teacher(attention_mask=mask, attention_4=torch.zeros(2, 1, 3, 3))
    with pytest.raises(ValueError, match="equal head counts.*num_attention_heads: 1"):
        build_loss("minilm")(student, teacher)
    with pytest.raises(KeyError, match=r"--features relation --set label.relation_layers=\[4\]"):
        teacher.value_relation(4)


def test_layer_maps():
    assert map_layers(4, 12, None) == [(1, 3), (2, 6), (3, 9), (4, 12)]  # TinyBERT g(i) = 3i
    assert map_layers(3, 12, [4, 8, 12]) == [(1, 4), (2, 8), (3, 12)]
    pkd = build_loss("pkd")
    assert [t for _, t in pkd.pairs(6, 12)] == [2, 4, 6, 8, 10]  # PKD-Skip
    assert [t for _, t in build_loss("pkd", {"teacher_layers": [7, 8, 9, 10, 11]}).pairs(6, 12)] == [7, 8, 9, 10, 11]
    with pytest.raises(KeyError, match="no option"):
        build_loss("kd", {"temprature": 2})
