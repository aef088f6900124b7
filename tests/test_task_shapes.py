"""GLUE task shapes beyond binary classification, end to end: augment -> label -> train -> evaluate.

- regression (STS-B shape): a one-output teacher fine-tuned here on graded scores, a BiLSTM student
  trained on the teacher's score plus the gold score, Pearson / Spearman;
- multi-class sentence pairs (MNLI shape): string labels mapped through the teacher's label2id,
  accuracy and macro F1;
- token classification (NER shape): a MiniLM tagger fine-tuned on the bundled NER sample, tag-aligned
  augmentation, a BiLSTM tagger trained per word, entity-level F1 (seqeval).
Both are scored with pipelines/evaluate.py against values recomputed here from the models' outputs.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow.compute as pc
import pytest
import torch

import augment
from distill.cache import load
from distill.common.config_io import ConfigError
from distill.common.columns import Columns
from distill.common.inputs.text import read_text_table
from distill.label import LabelConfig, run
from distill.train.config import TrainConfig
from distill.train.loop import train
from pipelines import evaluate as evaluate_cli
from tests.conftest import SAMPLES

pytestmark = pytest.mark.slow
RECIPES = SAMPLES.parent / "configs" / "students"
MNLI_LABELS = {0: "entailment", 1: "neutral", 2: "contradiction"}  # MNLI's order on the hub: not sorted


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def score_data(tmp_path_factory):
    """The sentiment sample as scores: gold label x 0.8 + 0.1 (0.1 or 0.9, stored as floats)."""
    out = tmp_path_factory.mktemp("scores")
    table = read_text_table(SAMPLES / "sentiment.csv", Columns(text_a="sentence")).table
    rows = [{"sentence": s, "score": 0.8 * label + 0.1} for s, label in
            zip(table.column("text_a").to_pylist(), table.column("label").to_pylist())]
    dev = read_text_table(SAMPLES / "sentiment_dev.csv", Columns(text_a="sentence")).table
    dev_rows = [{"sentence": s, "score": 0.8 * label + 0.1} for s, label in
                zip(dev.column("text_a").to_pylist(), dev.column("label").to_pylist())]
    return _write_jsonl(out / "train.jsonl", rows), _write_jsonl(out / "dev.jsonl", dev_rows)


@pytest.fixture(scope="module")
def regression_teacher(score_data, minilm_dir, tmp_path_factory):
    from distill.finetune import FinetuneConfig, finetune

    teacher = tmp_path_factory.mktemp("regression-teacher")
    record = finetune(score_data[0], teacher, FinetuneConfig.from_dict(
        {"base_model": str(minilm_dir), "columns": {"text_a": "sentence", "label": "score"}, "epochs": 4,
         "learning_rate": 1e-4, "dev_rows": 40}))
    assert record["task"] == "regression" and set(record["dev_metrics"]) == {"pearson", "spearman"}
    return teacher, record


def test_regression_teacher_student_and_evaluate(ray_local, score_data, regression_teacher, tmp_path):
    teacher, record = regression_teacher
    assert record["dev_metrics"]["pearson"] > 0.6  # held-out rows of the training file
    train_file, dev_file = score_data
    config = augment.AugmentConfig.load(None, ["columns.text_a=sentence", "columns.label=score", "rules=[mask]",
                                                "tang.n_iter=3"])
    augmented = augment.run(train_file, tmp_path / "aug", config).output_dir
    cache_dir = run(augmented, tmp_path / "label", LabelConfig(teacher=str(teacher))).cache_dir
    cache = load(cache_dir)
    assert cache.features.task == "regression" and cache.dims.num_labels == 1
    batch = cache.batch(list(range(len(cache))))
    original = batch["aug_index"] == 0
    assert batch["labels"].dtype == torch.float32 and torch.isnan(batch["labels"][~original]).sum() == 0
    assert {round(x, 4) for x in batch["labels"][original].tolist()} == {0.1, 0.9}  # gold scores survive augmentation as floats

    # classifier-only losses are refused against a regression cache, before any step
    with pytest.raises(ConfigError, match="regression teacher's score"):
        train(TrainConfig.from_dict({"losses": {"ce": {}}, "max_steps": 2}), cache_dir, tmp_path / "refused")

    recipe = TrainConfig.load(RECIPES / "regression_bilstm.yaml", ["max_steps=240", "batch_size=32"])
    result = train(recipe, cache_dir, tmp_path / "run", dev_file, Columns(text_a="sentence", label="score"))
    assert set(result.report["student"]) >= {"pearson", "spearman"}
    assert result.report["teacher"]["pearson"] > 0.6
    assert result.report["student"]["pearson"] > 0.3  # it learned a graded score, not a constant

    scores_path = tmp_path / "scores.json"
    code = evaluate_cli.main([str(result.student_dir), str(teacher), "--data", str(dev_file), "--text-a", "sentence",
                              "--label", "score", "--json", str(scores_path)])
    assert code == 0
    scores = json.loads(scores_path.read_text())
    assert scores["task"] == "regression" and scores["metrics"] == ["pearson", "spearman"]
    assert scores["models"][str(result.student_dir)]["pearson"] == pytest.approx(result.report["student"]["pearson"])
    # the teacher's Pearson recomputed here from its own outputs
    from scipy.stats import pearsonr
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    dev = read_text_table(dev_file, Columns(text_a="sentence", label="score")).table
    tokenizer = AutoTokenizer.from_pretrained(teacher)
    model = AutoModelForSequenceClassification.from_pretrained(teacher).eval()
    with torch.no_grad():
        encoded = tokenizer(dev.column("text_a").to_pylist(), padding=True, truncation=True, max_length=128,
                            return_tensors="pt")
        predicted = model(**encoded).logits[:, 0].numpy()
    expected = pearsonr(predicted, np.asarray(dev.column("label").to_pylist()))[0]
    assert scores["models"][str(teacher)]["pearson"] == pytest.approx(expected, abs=1e-4)


@pytest.fixture(scope="module")
def nli_data(tmp_path_factory):
    """The paraphrase pairs as a 3-way NLI task with string labels."""
    out = tmp_path_factory.mktemp("nli")
    rows = [json.loads(line) for line in (SAMPLES / "paraphrase.jsonl").read_text().splitlines()]
    labelled = [{"premise": r["sentence1"], "hypothesis": r["sentence2"],
                 "label": "entailment" if r["label"] == 1 else ("neutral", "contradiction")[i % 2]}
                for i, r in enumerate(rows)]
    return _write_jsonl(out / "train.jsonl", labelled[:160]), _write_jsonl(out / "dev.jsonl", labelled[160:])


@pytest.fixture(scope="module")
def nli_teacher(tmp_path_factory, minilm_dir):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("nli-teacher")
    config = BertConfig(vocab_size=AutoTokenizer.from_pretrained(minilm_dir).vocab_size, hidden_size=32,
                        num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, num_labels=3,
                        id2label=MNLI_LABELS, label2id={v: k for k, v in MNLI_LABELS.items()}, initializer_range=0.2)
    BertForSequenceClassification(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(path)
    return path


def test_multiclass_pairs_map_string_labels_through_the_teacher_and_score_macro_f1(ray_local, nli_data, nli_teacher,
                                                                                   tmp_path):
    train_file, dev_file = nli_data
    columns = ["columns.text_a=premise", "columns.text_b=hypothesis", "rules=[mask]", "tang.n_iter=2"]
    augmented = augment.run(train_file, tmp_path / "aug", augment.AugmentConfig.load(None, columns)).output_dir
    cache = load(run(augmented, tmp_path / "label", LabelConfig(teacher=str(nli_teacher))).cache_dir)
    assert cache.is_pair and cache.dims.num_labels == 3 and cache.features.task == "classification"
    originals = cache.table.filter(pc.equal(cache.table.column("aug_index"), 0))
    gold = dict(zip(read_text_table(train_file, Columns(text_a="premise", text_b="hypothesis")).table
                    .column("source_id").to_pylist(),
                    read_text_table(train_file, Columns(text_a="premise", text_b="hypothesis")).table
                    .column("label").to_pylist()))
    label2id = {v: k for k, v in MNLI_LABELS.items()}
    assert [label2id[gold[s]] for s in originals.column("source_id").to_pylist()] == \
        originals.column("label").to_pylist()  # "neutral" is id 1, not its sorted position 2

    recipe = TrainConfig.from_dict({"student": {"name": "bilstm", "embedding_dim": 32, "hidden_size": 32,
                                                "mlp_size": 32}, "losses": {"ce": {}, "kd": {}}, "max_steps": 40,
                                    "learning_rate": 0.003})
    columns = Columns(text_a="premise", text_b="hypothesis")
    result = train(recipe, cache.path, tmp_path / "run", dev_file, columns)
    assert set(result.report["student"]) >= {"accuracy", "macro_f1"} and "f1" not in result.report["student"]
    scores_path = tmp_path / "scores.json"
    assert evaluate_cli.main([str(result.student_dir), str(nli_teacher), "--data", str(dev_file), "--text-a", "premise",
                              "--text-b", "hypothesis", "--metrics", "accuracy,macro_f1,mcc",
                              "--json", str(scores_path)]) == 0
    scores = json.loads(scores_path.read_text())["models"]
    # the teacher's accuracy recomputed here: argmax of its logits against the mapped gold ids
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    dev = read_text_table(dev_file, columns).table
    tokenizer = AutoTokenizer.from_pretrained(nli_teacher)
    model = AutoModelForSequenceClassification.from_pretrained(nli_teacher).eval()
    with torch.no_grad():
        encoded = tokenizer(dev.column("text_a").to_pylist(), dev.column("text_b").to_pylist(), padding=True,
                            truncation=True, max_length=128, return_tensors="pt")
        predicted = model(**encoded).logits.argmax(-1).numpy()
    gold_ids = np.array([label2id[x] for x in dev.column("label").to_pylist()])
    assert scores[str(nli_teacher)]["accuracy"] == pytest.approx(float((predicted == gold_ids).mean()))
    assert set(scores[str(result.student_dir)]) >= {"accuracy", "macro_f1", "mcc"}
    assert scores[str(result.student_dir)]["accuracy"] == pytest.approx(result.report["student"]["accuracy"])


def test_evaluate_refuses_a_label_no_model_can_produce_in_one_line(nli_teacher, tmp_path, capsys):
    bad = _write_jsonl(tmp_path / "bad.jsonl", [{"premise": "a b", "hypothesis": "c d", "label": "entailment"},
                                                 {"premise": "e f", "hypothesis": "g h", "label": "maybe"}])
    code = evaluate_cli.main([str(nli_teacher), "--data", str(bad), "--text-a", "premise", "--text-b", "hypothesis"])
    err = capsys.readouterr().err.strip().splitlines()[-1]  # (after transformers' loading bar)
    assert code == 2 and err.startswith("error: ")
    assert "bad.jsonl: row 2: label 'maybe' is not one of the teacher's labels" in err


def test_ner_teacher_tagger_student_and_evaluate(ray_local, minilm_dir, tmp_path):
    from seqeval.metrics import f1_score
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from distill.finetune import FinetuneConfig, finetune

    train_file, dev_file = SAMPLES / "ner.jsonl", SAMPLES / "ner_dev.jsonl"
    teacher = tmp_path / "teacher"
    record = finetune(train_file, teacher, FinetuneConfig.from_dict(
        {"base_model": str(minilm_dir), "columns": {"tokens": "tokens", "tags": "tags", "label": None},
         "epochs": 6, "learning_rate": 1e-4, "batch_size": 16}))
    assert record["task"] == "token_classification"
    config = augment.AugmentConfig.load(None, ["columns.tokens=tokens", "columns.tags=tags", "columns.id=id",
                                                "tang.n_iter=3"])  # default token rules: mask, pos, mention
    augmented = augment.run(train_file, tmp_path / "aug", config)
    assert augmented.manifest["task"] == "token_classification"
    cache = load(run(augmented.output_dir, tmp_path / "label", LabelConfig(teacher=str(teacher))).cache_dir)
    assert cache.features.task == "token_classification"
    recipe = TrainConfig.load(RECIPES / "ner_bilstm.yaml", ["epochs=8"])
    columns = Columns(tokens="tokens", tags="tags")
    result = train(recipe, cache.path, tmp_path / "run", dev_file, columns)
    assert result.report["teacher"]["entity_f1"] > 0.5  # 40 dev sentences of the sample's entity types
    assert result.report["student"]["entity_f1"] > 0.3

    scores_path = tmp_path / "scores.json"
    assert evaluate_cli.main([str(result.student_dir), str(teacher), "--data", str(dev_file), "--tokens", "tokens",
                              "--tags", "tags", "--json", str(scores_path)]) == 0
    scores = json.loads(scores_path.read_text())
    assert scores["task"] == "token_classification" and scores["metrics"][0] == "entity_f1"
    models = scores["models"]
    assert models[str(result.student_dir)]["entity_f1"] == pytest.approx(result.report["student"]["entity_f1"])
    # the teacher's entity F1 recomputed here: argmax at each word's first piece, seqeval on tag names
    rows = [json.loads(line) for line in dev_file.read_text().splitlines()]
    tokenizer = AutoTokenizer.from_pretrained(teacher)
    model = AutoModelForTokenClassification.from_pretrained(teacher).eval()
    predicted = []
    with torch.no_grad():
        for row in rows:
            encoded = tokenizer(row["tokens"], is_split_into_words=True, return_tensors="pt")
            word_ids = encoded.word_ids()
            starts = [word_ids.index(w) for w in range(len(row["tokens"]))]  # each word's first piece
            logits = model(**encoded).logits[0]
            predicted.append([model.config.id2label[int(logits[p].argmax())] for p in starts])
    expected = f1_score([r["tags"] for r in rows], predicted)
    assert models[str(teacher)]["entity_f1"] == pytest.approx(expected, abs=1e-6)


CONLL_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def test_conll_text_through_the_three_commands(ray_local, minilm_dir, tmp_path):
    """CoNLL in, no column flags: augment_and_label.py, train_student.py --eval and evaluate.py."""
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    from pipelines import augment_and_label, train_student

    torch.manual_seed(0)
    teacher = tmp_path / "teacher"
    config = BertConfig(vocab_size=AutoTokenizer.from_pretrained(minilm_dir).vocab_size, hidden_size=32,
                        num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                        id2label=dict(enumerate(CONLL_TAGS)), label2id={t: i for i, t in enumerate(CONLL_TAGS)})
    BertForTokenClassification(config).save_pretrained(teacher)
    AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(teacher)
    conll = SAMPLES / "ner.conll"
    assert augment_and_label.main(["--input", str(conll), "--output", str(tmp_path / "out"), "--teacher", str(teacher),
                                   "--set", "augment.tang.n_iter=2"]) == 0
    cache = load(tmp_path / "out")
    assert cache.features.task == "token_classification" and len(cache) > 5
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("student: {name: bilstm, embedding_dim: 16, hidden_size: 16, mlp_size: 16}\n"
                      "losses: {ce: {}, kd: {}}\nmax_steps: 4\n")
    assert train_student.main(["--recipe", str(recipe), "--cache", str(tmp_path / "out"), "--eval", str(conll),
                               "--out", str(tmp_path / "run")]) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["task"] == "token_classification" and report["dev"]["rows_scored"] == 5
    scores_path = tmp_path / "scores.json"
    assert evaluate_cli.main([str(tmp_path / "run" / "student"), str(teacher), "--data", str(conll),
                              "--json", str(scores_path)]) == 0
    scores = json.loads(scores_path.read_text())["models"]
    assert scores[str(teacher)]["token_accuracy"] == pytest.approx(report["teacher"]["token_accuracy"])

    from transformers import AutoConfig

    from pipelines import finetune_teacher

    assert finetune_teacher.main([str(conll), str(tmp_path / "tagger"), "--base-model", str(minilm_dir),
                                  "--set", "epochs=1"]) == 0  # CoNLL makes a tagger with no flags
    tagger = AutoConfig.from_pretrained(tmp_path / "tagger")
    assert tagger.architectures == ["BertForTokenClassification"] and "B-ORG" in tagger.label2id
