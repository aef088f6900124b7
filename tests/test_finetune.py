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
