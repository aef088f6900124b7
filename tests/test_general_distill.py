"""General (pre-training-stage) distillation end to end on tiny models: corpus → masked sequences →
compact teacher targets → DistilBERT- and TinyBERT-style general students → a task recipe that
starts from the general student. Offline there is no pretrained masked LM, so the DistilBERT path
runs on a tiny random one: these tests prove the mechanics (targets, losses, saving, init), not
the quality of a general student."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from distill import corpus
from distill.cache import load
from distill.common.config_io import ConfigError
from distill.label import LabelConfig, run as label_run
from distill.train.config import TrainConfig
from distill.train.loop import train
from tests.conftest import REPO, SAMPLES, build_tiny_teacher

pytestmark = pytest.mark.slow
RECIPES = REPO / "pipelines" / "configs" / "students"


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    """Ten paragraphs of real review sentences, one document per line."""
    with open(SAMPLES / "sentiment.csv", encoding="utf-8") as handle:
        sentences = [row["sentence"] for row in csv.DictReader(handle)]
    path = tmp_path_factory.mktemp("corpus-text") / "corpus.txt"
    path.write_text("\n".join(" ".join(sentences[i : i + 30]) for i in range(0, 300, 30)) + "\n", encoding="utf-8")
    return path


def _corpus(corpus_file, out, tokenizer, **options):
    config = corpus.CorpusConfig(tokenizer=str(tokenizer), max_length=64, **options)
    return corpus.run(corpus_file, out, config).output_dir


@pytest.fixture(scope="module")
def mlm_cache(ray_local, corpus_file, tiny_mlm_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("general-mlm")
    masked = _corpus(corpus_file, out / "corpus", tiny_mlm_dir, copies=2)
    config = LabelConfig(teacher=str(tiny_mlm_dir), features=["hidden"], hidden_layers=[2], topk=16)
    return label_run(masked, out, config).cache_dir


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory, minilm_dir):
    """A random 2-layer BERT encoder (no head: what TinyBERT's general distillation needs)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("encoder")
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(path)
    AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(path)
    return path


def _general_args(corpus_file, encoder_dir, output) -> list[str]:
    return ["--config", str(REPO / "pipelines" / "configs" / "pipeline" / "general" / "tinybert.yaml"), "--input",
            str(corpus_file), "--output", str(output), "--teacher", str(encoder_dir), "--set", "corpus.max_length=64"]


@pytest.fixture(scope="module")
def general_run(ray_local, corpus_file, encoder_dir, tmp_path_factory):
    """`general_distill_data.py` with the TinyBERT config (embedding, hidden states, attention recomputed):
    its output directory and what it printed."""
    import contextlib
    import io

    from pipelines.general_distill_data import main

    out, printed = tmp_path_factory.mktemp("general-encoder") / "out", io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(_general_args(corpus_file, encoder_dir, out)) == 0
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def encoder_cache(general_run):
    return load(general_run[0]).path


def test_a_masked_lm_teacher_stores_top_k_at_masked_positions_only(mlm_cache, tiny_mlm_dir):
    from transformers import AutoModelForMaskedLM

    cache = load(mlm_cache)
    assert cache.features.head == "masked_lm" and "logits" not in cache.table.column_names
    schema = cache.table.schema
    assert str(schema.field("topk_indices").type) == "list<item: fixed_size_list<item: uint16>[16]>"
    assert str(schema.field("topk_logits").type) == "list<item: fixed_size_list<item: halffloat>[16]>"
    batch = cache.batch(list(range(8)))
    model = AutoModelForMaskedLM.from_pretrained(tiny_mlm_dir).eval()
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       token_type_ids=batch["token_type_ids"]).logits
    real = batch["mlm_positions"] >= 0
    assert real.sum() > 0 and (batch["mlm_labels"][real] >= 0).all()
    rows = torch.arange(8)[:, None].expand_as(real)[real]
    at_masked = logits[rows, batch["mlm_positions"][real]]
    top = at_masked.topk(16)
    agree = (batch["topk_indices"][real][:, :4] == top.indices[:, :4]).float().mean()
    assert agree > 0.95  # float16 storage and batch layout may swap near-ties
    torch.testing.assert_close(batch["topk_logits"][real][:, 0], top.values[:, 0], rtol=2e-3, atol=2e-3)
    torch.testing.assert_close(batch["topk_logsumexp"][real], torch.logsumexp(at_masked / 2.0, -1), rtol=1e-4, atol=1e-4)
    per_example = cache.manifest["totals"]["column_bytes_per_example"]
    assert per_example["topk_indices"] < per_example["topk_logits"] * 1.01  # uint16 = float16 width
    # two differently masked copies of each sequence
    uids = cache.table.column("uid").to_pylist()
    assert {u.rsplit("-", 1)[1] for u in uids} == {"0", "1"}


def test_distilbert_triple_loss_trains_a_masked_lm_student(mlm_cache, tiny_mlm_dir, tmp_path):
    from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification

    config = TrainConfig.load(RECIPES / "distilbert_general.yaml",
                              ["student.num_layers=1", "max_steps=12", "batch_size=8", "learning_rate=0.001",
                               "log_every=1", "losses.cosine.teacher_layer=2"])
    result = train(config, mlm_cache, tmp_path / "run", teacher=str(tiny_mlm_dir))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in rows if "loss_mlm_kd" in r]
    assert len(losses) == 12 and all(np.isfinite(r["loss"]) for r in losses)
    assert np.mean([r["loss_mlm_kd"] for r in losses[-3:]]) < np.mean([r["loss_mlm_kd"] for r in losses[:3]])
    student = AutoModelForMaskedLM.from_pretrained(result.student_dir)
    assert student.config.num_hidden_layers == 1
    # the saved general student starts a task: its encoder under a new classifier head
    classifier = AutoModelForSequenceClassification.from_pretrained(result.student_dir, num_labels=2)
    torch.testing.assert_close(classifier.bert.encoder.layer[0].attention.self.query.weight,
                               student.bert.encoder.layer[0].attention.self.query.weight)


def test_tinybert_general_student_then_task_recipe_from_it(encoder_cache, sentences_cache, tmp_path):
    cache = load(encoder_cache)
    assert cache.features.head == "none" and not [c for c in cache.table.column_names if c.startswith("attention")]
    options = ["student.num_hidden_layers=2", "student.hidden_size=16", "student.num_attention_heads=4",
               "student.intermediate_size=32", "max_steps=8", "batch_size=8", "log_every=1", "learning_rate=0.001"]
    general = train(TrainConfig.load(RECIPES / "tinybert_general.yaml", options), encoder_cache, tmp_path / "general")
    rows = [json.loads(line) for line in (tmp_path / "general" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and all(np.isfinite(r["loss_tinybert_attention"]) for r in rows)
    assert rows[-1]["loss"] < rows[0]["loss"]
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(general.student_dir)
    import yaml

    recipe = yaml.safe_load((RECIPES / "tinybert4.yaml").read_text())
    recipe["student"]["init"] = str(general.student_dir)
    for stage in recipe["stages"]:
        stage["max_steps"] = 2
    task = TrainConfig.from_dict({**recipe, "batch_size": 8})
    result = train(task, sentences_cache, tmp_path / "task")
    from distill.students import load_student

    student = load_student(result.student_dir)
    assert student.model.config.hidden_size == 16 and student.head == "classification"
    # the task student started from the general one (its embeddings move only a little in 4 steps)
    start = encoder.embeddings.word_embeddings.weight
    assert torch.allclose(student.model.bert.embeddings.word_embeddings.weight, start, atol=0.05)


@pytest.fixture(scope="module")
def sentences_cache(ray_local, tmp_path_factory, minilm_dir):
    """A classification cache for the task stage: hidden, attention and embedding of a 2-layer
    teacher with 4 heads (TinyBERT's attention loss needs the student's head count)."""
    import augment

    base = tmp_path_factory.mktemp("task")
    teacher = build_tiny_teacher(base / "teacher", minilm_dir)
    config = augment.AugmentConfig.load(None, ["rules=[mask]", "tang.n_iter=1", "columns.text_a=sentence"])
    augment.run(SAMPLES / "sentiment.csv", base / "augmented", config)
    label_config = LabelConfig(teacher=str(teacher), features=["hidden", "attention", "embedding"])
    return label_run(base / "augmented", base, label_config).cache_dir


def test_losses_that_need_masked_lm_targets_are_refused_on_other_caches(encoder_cache, tmp_path):
    config = TrainConfig(student={"name": "narrow_bert", "num_hidden_layers": 1, "hidden_size": 16,
                                  "num_attention_heads": 4, "intermediate_size": 32},
                         losses={"mlm_kd": {}, "mlm_ce": {}}, max_steps=1)
    with pytest.raises(ConfigError, match="masked-LM teacher's top-k") as error:
        train(config, encoder_cache, tmp_path / "run")
    assert "\n" not in str(error.value)


def test_the_general_pipeline_builds_a_cache_and_reuses_it(general_run, corpus_file, encoder_dir, capsys):
    from pipelines.general_distill_data import main

    out, first = general_run
    assert "teacher head      none" in first and "masked copies" in first
    cache = load(out)
    assert cache.features.attention_mode == "recompute" and cache.manifest["input"]["kind"] == "corpus"
    args = _general_args(corpus_file, encoder_dir, out)
    assert main(args) == 0  # a rerun: both stages found complete
    assert "reused, no forward pass" in capsys.readouterr().out
    code = main([*args[:-2], "--set", "corpus.max_length=4"])
    assert code == 2 and capsys.readouterr().err.count("\n") == 1  # one line: max_length must be >= 8
    other = [*args[:4], "--output", str(out.parent / "other"), *args[6:-2], "--set", "corpus.max_length=4096"]
    assert main(other) == 2 and not (out.parent / "other").exists()  # refused before the corpus stage
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "corpus.max_length: 4096 is more than the teacher's" in err
