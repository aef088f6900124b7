"""Token tasks, train side: students' per-word shapes and saving, losses over real words only,
seqeval metrics against hand-computed values, token teacher fine-tuning, and augmented shards ->
label -> train -> report end to end (real local Ray, tiny models)."""

from __future__ import annotations

import json

import pytest
import torch

from distill.cache import load
from distill.common.columns import Columns
from distill.label import LabelConfig, run
from distill.losses import build_loss
from distill.metrics import compute_metrics, default_metrics
from distill.students import StudentOutput, get_student, load_student
from distill.teacher_batch import TeacherBatch
from distill.train.config import TrainConfig
from distill.train.loop import build_context, train
from tests.conftest import REPO
from tests.token_data import ID2LABEL, augmented_rows, tagged_sentences, write_augmented, write_jsonl

RECIPES = REPO / "pipelines" / "configs" / "students"


# -- losses ---------------------------------------------------------------------------------------
def _token_batch() -> tuple[StudentOutput, TeacherBatch]:
    """Two rows of 3 and 1 words; padding slots hold junk student logits and zero teacher logits."""
    torch.manual_seed(0)
    word_starts = torch.tensor([[1, 2, 4], [1, -1, -1]])
    teacher = torch.randn(2, 3, 5)
    teacher[1, 1:] = 0
    student = torch.randn(2, 3, 5) * 3
    labels = torch.tensor([[0, 1, 2], [3, -100, -100]])
    tensors = {"word_starts": word_starts, "labels": labels, "logits": teacher, "aug_index": torch.tensor([0, 1]),
               "word_mask": word_starts >= 0}
    return StudentOutput(logits=student, num_layers=1), TeacherBatch(tensors, num_layers=2)


def test_token_losses_average_over_real_words_only():
    import torch.nn.functional as F

    student, teacher = _token_batch()
    real = teacher.word_mask
    s, t = student.logits[real], teacher.logits[real]  # the 4 real words
    expected_mse = F.mse_loss(s, t)
    expected_kd = F.kl_div(F.log_softmax(s / 2, -1), F.log_softmax(t / 2, -1), log_target=True, reduction="sum") / 4 * 4
    assert build_loss("logit_mse").__call__(student, teacher).item() == pytest.approx(expected_mse.item(), rel=1e-6)
    assert build_loss("kd", {"temperature": 2}).__call__(student, teacher).item() == pytest.approx(expected_kd.item(), rel=1e-6)
    # counting the padding slots would give another value
    assert F.mse_loss(student.logits, teacher.logits).item() != pytest.approx(expected_mse.item(), rel=1e-3)
    # ce: the augmented row's real word takes the teacher's argmax; the original row keeps its gold tags
    ce = build_loss("ce", {"augmented": "teacher"})
    targets = ce.targets(teacher)
    assert targets[0].tolist() == [0, 1, 2]
    assert targets[1].tolist() == [int(teacher.logits[1, 0].argmax()), -100, -100]
    expected_ce = F.cross_entropy(s, targets[real])
    assert ce(student, teacher).item() == pytest.approx(expected_ce.item(), rel=1e-6)
    skip = build_loss("ce", {"augmented": "skip"}).targets(teacher)
    assert skip[1].tolist() == [-100, -100, -100] and skip[0].tolist() == [0, 1, 2]


def test_padding_junk_does_not_move_token_losses():
    student, teacher = _token_batch()
    values = {name: build_loss(name)(student, teacher).item() for name in ("kd", "logit_mse", "ce", "soft_ce")}
    student.logits[~teacher.word_mask] = 1e3  # any value at padding
    for name, value in values.items():
        assert build_loss(name)(student, teacher).item() == pytest.approx(value, rel=1e-6), name


# -- metrics --------------------------------------------------------------------------------------
def test_seqeval_metrics_match_hand_computed_values():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-LOC", "I-LOC"], ["B-PER", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["O", "B-LOC", "O"], ["I-PER", "O"]]
    # gold entities: PER(0-1), LOC(3), LOC(1-2), PER(0) = 4; predicted: PER(0-1) ok, LOC(1) wrong span,
    # and conlleval's default opens an entity at a bare I-PER, so PER(0) is right: 2 of 3 predicted are right
    values = compute_metrics(default_metrics("token_classification"), pred, gold, "token_classification")
    assert values["entity_precision"] == pytest.approx(2 / 3)
    assert values["entity_recall"] == pytest.approx(2 / 4)
    assert values["entity_f1"] == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))
    assert values["token_accuracy"] == pytest.approx(6 / 9)
    # strict IOB2: a bare I-PER is no entity
    named = compute_metrics(["strict_entity_precision", "strict_entity_recall"], pred, gold, "token_classification")
    assert named == {"strict_entity_precision": pytest.approx(1 / 2), "strict_entity_recall": pytest.approx(1 / 4)}


# -- fine-tuning a token teacher --------------------------------------------------------------------
def test_finetune_a_token_teacher_saves_tag_names(tmp_path, tiny_token_teacher_dir):
    from transformers import AutoConfig, AutoModelForTokenClassification

    from distill.finetune import FinetuneConfig, finetune

    data = write_jsonl(tmp_path / "train.jsonl", tagged_sentences(40), tokens="words", tags="ner")
    config = FinetuneConfig.from_dict({"base_model": str(tiny_token_teacher_dir), "epochs": 2, "learning_rate": 1e-3,
                                       "dev_rows": 8, "columns": {"tokens": "words", "tags": "ner", "label": None}})
    record = finetune(data, tmp_path / "teacher", config)
    assert record["task"] == "token_classification" and record["train_rows"] == 32
    assert record["label_map"] == {"B-LOC": 0, "B-PER": 1, "I-LOC": 2, "I-PER": 3, "O": 4}
    saved = AutoConfig.from_pretrained(tmp_path / "teacher")
    assert saved.id2label == {0: "B-LOC", 1: "B-PER", 2: "I-LOC", 3: "I-PER", 4: "O"}
    assert saved.architectures == ["BertForTokenClassification"]
    assert AutoModelForTokenClassification.from_pretrained(tmp_path / "teacher").num_labels == 5
    assert 0 <= record["dev_accuracy"] <= 1


# -- students and end to end ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def token_cache(ray_local, tiny_token_teacher_dir, tmp_path_factory):
    """Augmented shards written directly (a stand-in for an augment run), labelled by the tiny tagger."""
    augmented = write_augmented(tmp_path_factory.mktemp("aug"), augmented_rows(tagged_sentences(40), copies=2))
    return run(augmented, tmp_path_factory.mktemp("label"), LabelConfig(teacher=str(tiny_token_teacher_dir))).cache_dir


STUDENTS = [
    {"name": "bilstm", "embedding_dim": 16, "hidden_size": 8, "mlp_size": 8},
    {"name": "bilstm", "init_embeddings": "teacher", "hidden_size": 8, "mlp_size": 8},
    {"name": "bert_from_teacher", "num_layers": 1, "layers": [1]},
    {"name": "narrow_bert", "num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32},
]


@pytest.mark.slow
@pytest.mark.parametrize("options", STUDENTS, ids=lambda o: o["name"] + ("-teacher-emb" if "init_embeddings" in o else ""))
def test_students_give_per_word_logits_and_reload(token_cache, tiny_token_teacher_dir, tmp_path, options):
    cache = load(token_cache)
    student = get_student(options["name"]).build({k: v for k, v in options.items() if k != "name"},
                                                 build_context(cache, tiny_token_teacher_dir)).eval()
    batch = cache.batch([0, 5, 9, 30])
    with torch.no_grad():
        logits = student(batch).logits
    assert logits.shape == (*batch["word_starts"].shape, 5)
    student.save(tmp_path / "student")
    with torch.no_grad():
        torch.testing.assert_close(load_student(tmp_path / "student").eval()(batch).logits, logits)
    if options["name"] != "bilstm":  # a BertForTokenClassification, tag names included
        from transformers import AutoModelForTokenClassification

        from distill.common.models import at_words

        model = AutoModelForTokenClassification.from_pretrained(tmp_path / "student").eval()
        assert model.config.id2label == ID2LABEL
        with torch.no_grad():
            direct = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        torch.testing.assert_close(at_words(direct, batch["word_starts"]), logits)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["ner_bilstm", "ner_bert"])
def test_augmented_shards_to_label_to_train_to_report(token_cache, tiny_token_teacher_dir, tmp_path, recipe):
    dev = write_jsonl(tmp_path / "dev.jsonl", tagged_sentences(12, seed=7), tokens="words", tags="ner")
    overrides = ["max_steps=6", "batch_size=16"] + (["student.hidden_size=16", "student.mlp_size=16"]
                                                     if recipe == "ner_bilstm" else ["student.num_layers=1"])
    config = TrainConfig.load(RECIPES / f"{recipe}.yaml", overrides)
    result = train(config, token_cache, tmp_path / "run", dev, Columns(tokens="words", tags="ner"),
                   teacher=str(tiny_token_teacher_dir))
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    for row in ("student", "teacher"):
        assert set(report[row]) >= {"entity_f1", "entity_precision", "entity_recall", "token_accuracy"}
        assert 0 <= report[row]["entity_f1"] <= 1
    assert report["dev"]["rows_scored"] == 12
    assert (tmp_path / "run" / "report.md").read_text().startswith("| model | dev entity_f1 |")
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("dev_entity_f1" in r for r in rows) and result.steps == 6
