"""Teacher fine-tuning: learns the sample, saves a from_pretrained-loadable model, reruns skip."""

from __future__ import annotations

import json

import pytest

from distill.finetune import FinetuneConfig, finetune
from tests.conftest import SAMPLES


@pytest.mark.slow
def test_finetune_learns_saves_and_skips_on_rerun(tmp_path, minilm_dir):
    """The demo's teacher recipe on the real MiniLM-L6 encoder (about 10 s on 2 cores)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    config = FinetuneConfig.from_dict({
        "base_model": str(minilm_dir), "columns": {"text_a": "sentence"},
        "epochs": 4, "learning_rate": 1e-4, "dev_rows": 50,
    })
    record = finetune(SAMPLES / "sentiment.csv", tmp_path / "teacher", config)
    assert record["train_rows"] == 250 and record["dev_rows"] == 50
    assert record["train_accuracy"] > 0.9 and record["dev_accuracy"] > 0.7
    assert record["label_map"] == {"0": 0, "1": 1}
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "teacher")
    assert model.config.num_labels == 2 and (tmp_path / "teacher" / "model.safetensors").exists()
    AutoTokenizer.from_pretrained(tmp_path / "teacher")
    weights = (tmp_path / "teacher" / "model.safetensors").stat().st_mtime_ns
    again = finetune(SAMPLES / "sentiment.csv", tmp_path / "teacher", config)
    assert again == json.loads((tmp_path / "teacher" / "finetune.json").read_text())
    assert (tmp_path / "teacher" / "model.safetensors").stat().st_mtime_ns == weights  # not retrained


def test_string_labels_get_sorted_ids(tmp_path, tiny_teacher_dir):
    data = tmp_path / "pairs.jsonl"
    rows = [{"a": f"sentence number {i}", "b": f"other {i % 3}", "y": ["yes", "no"][i % 2]} for i in range(40)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = FinetuneConfig.from_dict({"base_model": str(tiny_teacher_dir), "epochs": 1,
                                       "columns": {"text_a": "a", "text_b": "b", "label": "y"}})
    record = finetune(data, tmp_path / "teacher", config)
    assert record["label_map"] == {"no": 0, "yes": 1}
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(tmp_path / "teacher").id2label == {0: "no", 1: "yes"}


def test_dev_file_is_scored_every_epoch_and_keep_best_saves_the_best_epoch(tmp_path, tiny_teacher_dir):
    """Per-epoch dev metrics in the record; with keep_best the saved weights score the best epoch's value."""
    from distill.common.columns import Columns
    from distill.evaluate import evaluate_models

    dev = SAMPLES / "sentiment_dev.csv"
    config = FinetuneConfig.from_dict({"base_model": str(tiny_teacher_dir), "columns": {"text_a": "sentence"},
                                       "epochs": 3, "learning_rate": 1e-3, "keep_best": True})
    record = finetune(SAMPLES / "sentiment.csv", tmp_path / "teacher", config, dev_path=dev)
    scores = [e["dev_metrics"]["accuracy"] for e in record["epochs"]]
    assert [e["epoch"] for e in record["epochs"]] == [1, 2, 3] and record["dev_rows"] == 80
    assert record["best_epoch"] == scores.index(max(scores)) + 1
    assert record["dev_metrics"]["accuracy"] == max(scores)
    saved = evaluate_models([str(tmp_path / "teacher")], dev, Columns(text_a="sentence"))["models"]
    assert saved[str(tmp_path / "teacher")]["accuracy"] == pytest.approx(max(scores), abs=1e-6)
    with pytest.raises(Exception, match="dev file or dev_rows"):
        finetune(SAMPLES / "sentiment.csv", tmp_path / "other", FinetuneConfig.from_dict(
            {"base_model": str(tiny_teacher_dir), "columns": {"text_a": "sentence"}, "dev_rows": 10}), dev_path=dev)
