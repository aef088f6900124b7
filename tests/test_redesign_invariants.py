"""The issue-24 redesign kept behaviour: the demo's fingerprints and the demo student's weights.

`tests/fixtures/demo_invariants.json` was recorded on the code before the redesign (commit d226beb)
by `DISTILL_RECORD_INVARIANTS=1 pytest tests/test_redesign_invariants.py`. The teacher is built
here from a seeded NumPy stream and hand-written config/tokenizer files, so its bytes (and so every
fingerprint) do not depend on the installed transformers version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO, SAMPLES

RECORD = REPO / "tests" / "fixtures" / "demo_invariants.json"
CONFIGS = REPO / "pipelines" / "configs"
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def _deterministic_teacher(path: Path, minilm_dir: Path) -> Path:
    """A 6-layer BERT classifier (hidden 32; the demo caches layer 6) whose files are the same bytes on
    every machine and library version."""
    from safetensors.numpy import save_file
    from transformers import BertConfig, BertForSequenceClassification

    config = dict(architectures=["BertForSequenceClassification"], model_type="bert", vocab_size=30522,
                  hidden_size=32, num_hidden_layers=6, num_attention_heads=4, intermediate_size=64,
                  max_position_embeddings=256, type_vocab_size=2, hidden_act="gelu", hidden_dropout_prob=0.1,
                  attention_probs_dropout_prob=0.1, layer_norm_eps=1e-12, pad_token_id=0,
                  id2label={"0": "LABEL_0", "1": "LABEL_1"}, label2id={"LABEL_0": 0, "LABEL_1": 1})
    shapes = BertForSequenceClassification(BertConfig(**config)).state_dict()
    rng = np.random.default_rng(0)
    weights = {name: (rng.standard_normal(tuple(t.shape)) * 0.2).astype(np.float32)
               for name, t in sorted(shapes.items()) if "position_ids" not in name}
    path.mkdir(parents=True)
    save_file(weights, str(path / "model.safetensors"), metadata={"format": "pt"})
    (path / "config.json").write_text(json.dumps(config, sort_keys=True, indent=2) + "\n")
    for name in TOKENIZER_FILES:
        shutil.copy(minilm_dir / name, path / name)
    return path


def _weight_summary(path: Path) -> dict[str, list[float]]:
    from safetensors.numpy import load_file

    return {name: [float(t.astype(np.float64).sum()), float(np.square(t.astype(np.float64)).sum()),
                   *[float(v) for v in t.reshape(-1)[:3]]] for name, t in sorted(load_file(str(path)).items())}


def _demo_run(tmp_path: Path, teacher: Path, config: str, **train) -> dict:
    from pipelines.augment_and_label import main as augment_and_label

    out = tmp_path / config
    assert augment_and_label(["--config", str(CONFIGS / "pipeline" / f"{config}.yaml"), "--output", str(out),
                              "--teacher", str(teacher)]) == 0
    augmented = json.loads((out / "augmented" / "_manifest.json").read_text())
    cache_dir = out / "teacher" / (out / "teacher" / "LATEST").read_text().strip()
    cache = json.loads((cache_dir / "_manifest.json").read_text())
    rows = [row for s in augmented["shards"] for row in pq.read_table(out / "augmented" / s["file"]).to_pylist()]
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()  # rows, not parquet bytes
    return {"augmented_fingerprint": augmented["fingerprint"], "augmented_rows": digest,
            "cache_fingerprint": cache["fingerprint"], "teacher_fingerprint": cache["teacher_fingerprint"],
            "cache_rows": cache["totals"]["rows"], "out": str(out)}


def _demo_student(tmp_path: Path, cache: str) -> dict[str, list[float]]:
    from pipelines.train_student import main as train_student

    run = tmp_path / "student"
    assert train_student(["--recipe", str(CONFIGS / "students" / "tang_bilstm.yaml"), "--cache", cache,
                          "--eval", str(SAMPLES / "sentiment_dev.csv"), "--text-a", "sentence", "--out", str(run),
                          "--set", "epochs=1", "--set", "seed=0"]) == 0
    return _weight_summary(run / "student" / "model.safetensors")


@pytest.mark.slow
def test_demo_fingerprints_and_student_weights_unchanged(ray_local, tmp_path, minilm_dir):
    teacher = _deterministic_teacher(tmp_path / "teacher", minilm_dir)
    sentiment = _demo_run(tmp_path, teacher, "demo_sentiment")
    pair_teacher = _deterministic_teacher(tmp_path / "pair-teacher", minilm_dir)
    paraphrase = _demo_run(tmp_path, pair_teacher, "demo_paraphrase")
    now = {"sentiment": {k: v for k, v in sentiment.items() if k != "out"},
           "paraphrase": {k: v for k, v in paraphrase.items() if k != "out"},
           "student": _demo_student(tmp_path, sentiment["out"])}
    if os.environ.get("DISTILL_RECORD_INVARIANTS"):
        RECORD.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    recorded = json.loads(RECORD.read_text())
    for run in ("sentiment", "paraphrase"):
        assert now[run] == recorded[run], f"the {run} demo's fingerprints or augmented rows changed"
    assert now["student"].keys() == recorded["student"].keys()
    for name, values in recorded["student"].items():  # float sums: rounding differs between CPUs
        np.testing.assert_allclose(now["student"][name], values, rtol=1e-4, atol=1e-5, err_msg=name)
