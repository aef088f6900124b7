"""Each task kind (`distill.tasks`) on its own: how it is found, what it stores, checks, scores and runs."""

from __future__ import annotations

import math

import pytest
import torch

from distill.cache.features import FeatureSet, TeacherDims
from distill.common.config_io import ConfigError
from distill.common.models import at_masked, at_words
from distill.label.config import LabelConfig
from distill.metrics import METRICS, check_metrics, default_metrics
from distill.tasks import HEADS, TASKS, data_task, get_task, input_task, task_of_head, teacher_task

DIMS = TeacherDims(num_labels=3, hidden_size=8, num_layers=2, num_heads=2, vocab_size=40)


def test_every_kind_is_found_by_its_name_and_head():
    assert list(TASKS) == ["classification", "regression", "token_classification", "masked_lm", "none"]
    assert HEADS == ("classification", "token_classification", "masked_lm", "none")
    for name, task in TASKS.items():
        assert get_task(name) is task and task_of_head(task.head, 1 if task.scores else 3) is task
    assert task_of_head("classification", 1).name == "regression"  # a classifier with one output (STS-B)
    assert task_of_head("classification").name == "classification"
    with pytest.raises(ValueError, match=r"unknown teacher head 'tagger' \(known: classification, token_classific"):
        task_of_head("tagger")
    with pytest.raises(ValueError, match="unknown task 'ner'"):
        get_task("ner")


@pytest.mark.parametrize("config, corpus, words, head, expected", [
    ({"architectures": ["BertForSequenceClassification"], "id2label": {0: "a", 1: "b"}}, False, False, "auto",
     "classification"),
    ({"architectures": ["BertForSequenceClassification"], "id2label": {0: "LABEL_0"}}, False, False, "auto",
     "regression"),
    ({"problem_type": "regression", "num_labels": 2}, False, False, "auto", "regression"),
    ({"architectures": ["BertForTokenClassification"]}, False, False, "auto", "token_classification"),
    ({"architectures": ["BertForSequenceClassification"]}, False, True, "auto", "token_classification"),  # tagged input
    ({"architectures": ["BertForMaskedLM"]}, True, False, "auto", "masked_lm"),
    ({"architectures": ["BertForPreTraining"]}, True, False, "auto", "masked_lm"),
    ({"architectures": ["BertModel"]}, True, False, "auto", "none"),
    ({"architectures": ["BertForMaskedLM"]}, True, False, "none", "none"),  # as configured
])
def test_the_task_of_a_teacher_comes_from_its_config_and_input(config, corpus, words, head, expected):
    assert teacher_task(config, corpus, words, head).name == expected


def test_an_augmented_manifest_asks_for_sentences_or_tagged_words():
    assert data_task(True).input_task == "token_classification"
    assert data_task(False).input_task == "sequence_classification"
    assert input_task({"task": "token_classification"}).name == "token_classification"
    assert input_task({"task": "sequence_classification"}).name == "classification"
    assert input_task({"kind": "corpus"}).name == "classification"  # no task key: sequence (as before tasks)
    assert input_task({}).input_task == "sequence_classification"


def test_model_classes_and_output_sizes():
    import transformers

    expected = {"classification": transformers.AutoModelForSequenceClassification,
                "regression": transformers.AutoModelForSequenceClassification,
                "token_classification": transformers.AutoModelForTokenClassification,
                "masked_lm": transformers.AutoModelForMaskedLM, "none": transformers.AutoModel}
    assert {name: task.model_class() for name, task in TASKS.items()} == expected
    assert {name: task.output_size(DIMS) for name, task in TASKS.items()} == {
        "classification": 3, "regression": 3, "token_classification": 3, "masked_lm": 40, "none": 0}


@pytest.mark.parametrize("head, config, masked, message", [
    ("masked_lm", LabelConfig(), False, "a masked-LM teacher labels masked positions"),
    ("none", LabelConfig(), False, "an encoder-only teacher has no logits"),
    ("token_classification", LabelConfig(features=["topk"]), False, "stores full logits per word"),
    ("token_classification", LabelConfig(), True, "labels tagged words, not a masked corpus"),
])
def test_label_options_a_kind_cannot_honour_are_refused(head, config, masked, message):
    with pytest.raises(ConfigError, match=message):
        config.feature_set(DIMS, head, masked_input=masked)


def test_top_k_and_its_temperature_follow_the_kind():
    topk = LabelConfig(features=["topk"], topk=2)
    assert topk.feature_set(DIMS, "classification").topk == 2
    assert LabelConfig().feature_set(DIMS, "classification").topk is None
    masked = LabelConfig(topk=100).feature_set(DIMS, "masked_lm", masked_input=True)
    assert (masked.topk, masked.topk_temperature, masked.topk_index_dtype) == (40, 2.0, "uint16")
    assert LabelConfig(features=["hidden", "topk"]).feature_set(DIMS, "none").topk is None
    with pytest.raises(ValueError, match="stored as top-k"):
        FeatureSet(DIMS, head="masked_lm")
    with pytest.raises(ValueError, match="full logits per word"):
        FeatureSet(DIMS, head="token_classification", topk=2)


@pytest.mark.parametrize("head, num_labels, topk, masked, present", [
    ("classification", 3, None, False, {"logits", "classes", "predictions"}),
    ("classification", 3, 2, False, {"topk", "class_topk", "classes", "predictions"}),
    ("classification", 1, None, False, {"logits", "score", "predictions"}),
    ("token_classification", 3, None, False, {"logits", "words", "classes", "predictions"}),
    ("masked_lm", 40, 4, True, {"topk", "mlm_topk", "mlm"}),
    ("none", 0, None, True, {"mlm"}),
])
def test_the_features_a_cache_offers_follow_its_task(head, num_labels, topk, masked, present):
    dims = TeacherDims(num_labels, 8, 2, 2, 40)
    features = FeatureSet(dims, topk=topk, head=head, has_mlm_columns=masked)
    kinds = ("logits", "topk", "class_topk", "mlm_topk", "mlm", "words", "classes", "score", "predictions")
    assert {kind for kind in kinds if features.available(kind)} == present
    layouts = {c.name: c.layout for c in features.columns()}
    expected = {"classification": "fixed", "token_classification": "per_word"}.get(head)
    assert layouts.get("logits") == (expected if "logits" in present else None)
    assert layouts.get("topk_indices") == ({True: "per_masked", False: "fixed"}[masked] if topk else None)


def test_metrics_belong_to_their_task():
    for task in TASKS.values():
        assert set(task.metrics) <= set(METRICS)
        assert set(task.default_metrics(2)) <= set(task.metrics)
        assert check_metrics(task.default_metrics(3), task.name) == task.default_metrics(3)
    assert default_metrics("token_classification") == ["entity_f1", "entity_precision", "entity_recall",
                                                       "token_accuracy"]
    with pytest.raises(ValueError, match=r"metric 'accuracy' does not apply to masked_lm \(use one of: \)"):
        check_metrics(["accuracy"], "masked_lm")


def test_scored_predictions_per_kind():
    logits = torch.tensor([[0.1, 0.9], [2.0, -1.0]])
    assert get_task("classification").scored(logits, torch.tensor([1, 1])) == ([1, 0], [1, 1])
    scores, gold = get_task("regression").scored(logits, torch.tensor([0.5, 2.0]))
    assert [float(x) for x in scores] == pytest.approx([0.1, 2.0]) and [float(x) for x in gold] == [0.5, 2.0]
    words = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [5.0, 0.0]]])  # [B=1, W=3, C=2]; the third word is padding
    assert get_task("token_classification").scored(words, torch.tensor([[1, 1, -100]]), ["O", "B-X"]) == (
        [["B-X", "O"]], [["B-X", "B-X"]])


def test_gold_labels_of_a_regression_cache_are_floats_with_nan_for_none():
    labels = torch.tensor([3, -100, 0])
    regression = get_task("regression").gold(labels)
    assert regression.dtype == torch.float32 and regression[0] == 3.0 and math.isnan(regression[1])
    assert get_task("classification").gold(labels) is labels
    assert get_task("regression").gold(torch.tensor([0.5])).tolist() == [0.5]


def test_head_config_card_and_flags():
    from transformers import BertConfig

    config = BertConfig(id2label={0: "O", 1: "B-X"}, label2id={"O": 0, "B-X": 1})
    assert get_task("classification").head_config(config, 2) == {"num_labels": 2}
    assert get_task("token_classification").head_config(config, 2) == {
        "num_labels": 2, "id2label": {0: "O", 1: "B-X"}, "label2id": {"O": 0, "B-X": 1}}
    assert get_task("masked_lm").head_config(config, 2) == get_task("none").head_config(config, 2) == {}
    assert [name for name, task in TASKS.items() if task.online] == ["classification", "regression"]
    assert {name: task.problem_type for name, task in TASKS.items() if task.problem_type} == {
        "classification": "single_label_classification", "regression": "regression"}
    line = get_task("token_classification").card_lines({"words": 9, "words_truncated": 2})
    assert "2 of 9 words cut by max length" in line[0] and get_task("token_classification").recipe == "ner_bilstm"
    assert get_task("none").card_lines({}) == [] and get_task("masked_lm").recipe == "tang_bilstm"
    space = get_task("token_classification").label_space({"id2label": {"0": "O", "1": "B-X"},
                                                          "label2id": {"O": 0, "B-X": 1}})
    assert space.names() == ["O", "B-X"] and space.num_labels == 2


@pytest.fixture(scope="module")
def bert_config():
    from transformers import BertConfig

    torch.manual_seed(0)
    return BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
                      max_position_embeddings=16, num_labels=3)


def _inputs():
    return {"input_ids": torch.tensor([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]]),
            "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])}


@torch.inference_mode()
def test_forward_gives_each_heads_logits(bert_config):
    from transformers import BertForMaskedLM, BertForSequenceClassification, BertForTokenClassification, BertModel

    inputs = _inputs()
    classifier = BertForSequenceClassification(bert_config).eval()
    logits, mlm, hidden = get_task("classification").forward(classifier, inputs, True, {})
    torch.testing.assert_close(logits, classifier(**inputs).logits)
    assert mlm is None and len(hidden) == 3
    tagger = BertForTokenClassification(bert_config).eval()
    starts = torch.tensor([[1, 3], [1, -1]])
    logits, _, hidden = get_task("token_classification").forward(tagger, inputs, False, {"word_starts": starts})
    torch.testing.assert_close(logits, at_words(tagger(**inputs).logits, starts))
    assert logits.shape == (2, 2, 3) and hidden is None
    full, _, _ = get_task("token_classification").forward(tagger, inputs, False, {})  # a teacher: every piece
    assert full.shape == (2, 5, 3)
    lm = BertForMaskedLM(bert_config).eval()
    positions = torch.tensor([[1, 3], [2, -1]])
    logits, mlm, _ = get_task("masked_lm").forward(lm, inputs, False, {"mlm_positions": positions})
    assert logits is None and mlm.shape == (3, 30)  # only the three masked positions, row-major
    torch.testing.assert_close(mlm, at_masked(lm(**inputs).logits, positions), rtol=1e-5, atol=1e-5)
    encoder = BertModel(bert_config).eval()
    logits, mlm, hidden = get_task("none").forward(encoder, inputs, True, {"mlm_positions": positions})
    assert logits is None and mlm is None and len(hidden) == 3
