"""keep_best and early stopping: the student kept is the best dev evaluation's, and a run stops
once the dev score stops improving (the papers' "train to convergence, report the best epoch")."""

from __future__ import annotations

import json

import pytest
import torch

from distill.common.config_io import ConfigError
from distill.common.columns import Columns
from distill.evaluate import evaluate_models
from distill.train.config import TrainConfig
from distill.train.loop import BEST_DIR, train
from distill.train.run_dir import RunMismatchError
from tests.conftest import SAMPLES

pytestmark = pytest.mark.slow
DEV = SAMPLES / "sentiment_dev.csv"
SENTENCE = Columns(text_a="sentence")
BILSTM = {"name": "bilstm", "embedding_dim": 16, "hidden_size": 8, "mlp_size": 8}


def _weights(directory):
    from safetensors.torch import load_file

    return load_file(str(directory / "model.safetensors"))


def _dev_rows(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "dev_accuracy" in r]


def test_early_stopping_ends_the_run_and_keeps_the_best_evaluation(logits_cache, tmp_path):
    recipe = TrainConfig.from_dict({"student": BILSTM, "losses": {"ce": {}}, "learning_rate": 3e-2, "batch_size": 16,
                                    "epochs": 40, "keep_best": True, "early_stopping_patience": 2, "seed": 0})
    result = train(recipe, logits_cache, tmp_path / "run", DEV, SENTENCE, teacher_report=False)
    evaluations = _dev_rows(result.run_dir)
    steps_per_epoch = evaluations[0]["step"]
    assert result.steps < 40 * steps_per_epoch  # stopped: 40 epochs in a row never each beat the last
    scores = [r["dev_accuracy"] for r in evaluations]
    best_at = scores.index(max(scores))
    assert result.best["value"] == max(scores) and result.best["step"] == evaluations[best_at]["step"]
    assert len(scores) - 1 - best_at == 2  # exactly `patience` evaluations after the best, none better
    assert result.steps == evaluations[-1]["step"]
    kept = _weights(result.student_dir)
    for name, value in _weights(result.run_dir / BEST_DIR).items():
        torch.testing.assert_close(kept[name], value, rtol=0, atol=0)
    rescored = evaluate_models([str(result.student_dir)], DEV, SENTENCE)["models"][str(result.student_dir)]
    assert rescored["accuracy"] == pytest.approx(max(scores), abs=1e-6)  # the saved student is the best one
    assert result.dev["accuracy"] == pytest.approx(max(scores), abs=1e-6)
    assert json.loads((result.run_dir / "timing.json").read_text())["best"]["step"] == result.best["step"]


def test_without_keep_best_the_last_student_is_saved(logits_cache, tmp_path):
    recipe = TrainConfig.from_dict({"student": BILSTM, "losses": {"ce": {}}, "learning_rate": 3e-2, "batch_size": 16,
                                    "epochs": 3, "seed": 0})
    result = train(recipe, logits_cache, tmp_path / "run", DEV, SENTENCE, teacher_report=False)
    assert result.best is None and not (result.run_dir / BEST_DIR).exists()
    assert result.dev["accuracy"] == _dev_rows(result.run_dir)[-1]["dev_accuracy"]


def test_best_and_patience_need_a_dev_set(logits_cache, tmp_path):
    for option in ({"keep_best": True}, {"early_stopping_patience": 3}):
        with pytest.raises(ConfigError, match="dev set"):
            train(TrainConfig.from_dict({"student": BILSTM, "losses": {"ce": {}}, **option}), logits_cache,
                  tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_overwrite_removes_student_best_and_ray_dirs(logits_cache, tmp_path):
    """--overwrite starts over: an earlier run's student-best/ and Ray Train's _ray/ go with the rest
    of what it wrote (a later keep_best run would otherwise find a stale best student); other files stay."""
    run_dir = tmp_path / "run"
    first = {"student": BILSTM, "losses": {"ce": {}}, "max_steps": 4, "eval_every": 2, "keep_best": True}
    train(TrainConfig.from_dict(first), logits_cache, run_dir, DEV, SENTENCE, teacher_report=False)
    assert (run_dir / BEST_DIR / "model.safetensors").exists()
    (run_dir / "_ray" / "train").mkdir(parents=True)  # what a multi-worker run leaves
    (run_dir / "notes.txt").write_text("mine")
    second = TrainConfig.from_dict({**first, "keep_best": False, "max_steps": 2})
    with pytest.raises(RunMismatchError):
        train(second, logits_cache, run_dir, DEV, SENTENCE, teacher_report=False)
    result = train(second, logits_cache, run_dir, DEV, SENTENCE, teacher_report=False, overwrite=True)
    assert result.steps == 2 and not (run_dir / BEST_DIR).exists() and not (run_dir / "_ray").exists()
    assert (run_dir / "notes.txt").read_text() == "mine"
