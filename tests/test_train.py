"""Student training from a teacher cache: equivalence with online KD, checkpoints, refusal, learning."""

from __future__ import annotations

import json
import time

import pytest
import torch
import yaml

import augment
from distill.cache import load
from distill.cache.teacher_ref import find_teacher
from distill.common.columns import Columns
from distill.common.config_io import ConfigError
from distill.label import LabelConfig, run
from distill.students import load_student
from distill.teacher_batch import TeacherBatch
from distill.train.config import TrainConfig
from distill.train.loop import build_context, train
from distill.train.online import OnlineTeacher
from tests.conftest import SAMPLES

pytestmark = pytest.mark.slow
DEV = SAMPLES / "sentiment_dev.csv"
REPO_RECIPES = SAMPLES.parent / "configs" / "students"
SENTENCE = Columns(text_a="sentence")


@pytest.fixture(scope="module")
def augmented(ray_local, tmp_path_factory):
    out = tmp_path_factory.mktemp("aug")
    config = augment.AugmentConfig.load(None, ["columns.text_a=sentence", "rules=[mask, ngram]", "tang.n_iter=4",
                                                "rows_per_shard=150"])
    augment.run(SAMPLES / "sentiment.csv", out, config)
    return out


@pytest.fixture(scope="module")
def tiny_cache(augmented, tiny_teacher_dir, tmp_path_factory):
    """Every feature of a tiny 2-layer teacher, stored as float32 so online and cached values agree closely."""
    config = LabelConfig(teacher=str(tiny_teacher_dir), features=["cls", "hidden", "attention", "embedding", "relation"],
                         cls_layers=[0, 1, 2], hidden_layers=[1, 2], dtype="float32")
    return run(augmented, tmp_path_factory.mktemp("label"), config).cache_dir


def _recipe(**kwargs) -> TrainConfig:
    return TrainConfig.from_dict(kwargs)


@pytest.mark.parametrize("student, losses", [
    ({"name": "bert_from_teacher", "num_layers": 1, "layers": [1]}, {"ce": {}, "kd": {"temperature": 3}, "pkd": {"teacher_layers": [2]}, "cosine": {}}),
    ({"name": "narrow_bert", "num_hidden_layers": 2, "hidden_size": 16, "num_attention_heads": 4, "intermediate_size": 32},
     {"tinybert_embedding": {}, "tinybert_hidden": {}, "tinybert_attention": {}, "soft_ce": {}}),
    ({"name": "bilstm", "embedding_dim": 16, "hidden_size": 8, "mlp_size": 8}, {"ce": {}, "logit_mse": {}}),
    # shallower than the teacher: student layer 1 against teacher layer 2 (TinyBERT's map; MiniLM's last layers)
    ({"name": "narrow_bert", "num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 4, "intermediate_size": 32},
     {"tinybert_attention": {}, "minilm": {}}),
])
def test_cache_fed_and_online_losses_agree_on_the_same_batch(tiny_cache, student, losses):
    from distill.students import get_student

    cache = load(tiny_cache)
    teacher_dir = find_teacher(cache.manifest)  # the labelling path, still present here
    torch.manual_seed(0)
    model = get_student(student["name"]).build({k: v for k, v in student.items() if k != "name"},
                                               build_context(cache, teacher_dir)).eval()
    if hasattr(model, "capture_attention"):
        model.capture_attention()
    tensors = cache.batch(list(range(0, 64, 3)))
    projections = cache.attention_weights()  # MiniLM's relations are recomputed from hidden_1 on both sides
    cached = TeacherBatch(tensors, cache.dims.num_layers, cache.features.cls_layers, projections)
    online = OnlineTeacher(str(teacher_dir), [0, 1, 2], [0, 1, 2], [1, 2], "cpu")(tensors, projections)
    recipe = _recipe(student=student, losses=losses)
    built = recipe.stage_configs()[0].build_losses()
    attention_layers = sorted({s for loss in built.values() for s in loss.student_attention(model.num_layers, 2)})
    with torch.no_grad():
        out = model(tensors, needs_hidden=student["name"] != "bilstm", attention_layers=attention_layers)
        for name, loss in built.items():
            a, b = loss(out, cached).item(), loss(out, online).item()
            assert a == pytest.approx(b, rel=1e-4, abs=1e-5), name
    if student["name"] == "narrow_bert":  # W_e, W_h map the narrow width to the teacher's
        assert model.project_layer.weight.shape == (32, 16) and model.project_embedding.weight.shape == (32, 16)


def test_online_training_runs_the_teacher_each_step(tiny_cache, tmp_path, monkeypatch):
    """--online asks the teacher once per step and its outputs feed the losses: they reproduce the
    cache-fed run (the cache holds the same teacher's float32 outputs), and a teacher answering
    otherwise changes them."""
    recipe = _recipe(student={"name": "bert_from_teacher", "num_layers": 1},
                     losses={"kd": {}, "pkd": {"teacher_layers": [1]}}, max_steps=3, log_every=1)
    cached = _loss_rows(train(recipe, tiny_cache, tmp_path / "cached").run_dir)
    asked, real = [], OnlineTeacher.__call__

    def teacher(self, tensors, projections=None):
        asked.append(len(tensors["input_ids"]))
        return real(self, tensors, projections)

    monkeypatch.setattr(OnlineTeacher, "__call__", teacher)
    online = _loss_rows(train(recipe, tiny_cache, tmp_path / "online", online=True).run_dir)
    assert len(asked) == 3 and json.loads((tmp_path / "online" / "recipe.json").read_text())["online"] is True
    for a, b in zip(cached, online, strict=True):
        assert a["loss_kd"] == pytest.approx(b["loss_kd"], rel=1e-3)
        assert a["loss_pkd"] == pytest.approx(b["loss_pkd"], rel=1e-3)

    def contrary(self, tensors, projections=None):  # the same teacher with its class scores swapped
        batch = real(self, tensors, projections)
        batch.tensors["logits"] = batch.tensors["logits"].flip(-1)
        return batch

    monkeypatch.setattr(OnlineTeacher, "__call__", contrary)
    swapped = _loss_rows(train(recipe, tiny_cache, tmp_path / "swapped", online=True).run_dir)
    assert swapped[0]["loss_kd"] != pytest.approx(online[0]["loss_kd"], rel=1e-2)
    assert swapped[0]["loss_pkd"] == pytest.approx(online[0]["loss_pkd"], rel=1e-4)  # [CLS] states unchanged


def _loss_rows(run_dir):
    return [r for r in _metric_rows(run_dir) if "loss" in r]


def _optimizer_state(run_dir):
    return torch.load(run_dir / "checkpoint-last" / "optimizer.pt", weights_only=True)["optimizer"]["state"]


def test_dataloader_workers_reopen_the_memory_mapped_cache(tiny_cache, tmp_path, monkeypatch):
    """Two DataLoader workers (each reopening the cache) feed the batches one process would, and a
    run stopped after a checkpoint resumes to the uninterrupted run's weights and optimizer state."""
    import distill.train.student as student_module

    recipe = {"student": {"name": "bilstm", "embedding_dim": 16, "hidden_size": 8, "mlp_size": 8},
              "losses": {"logit_mse": {}}, "max_steps": 6, "batch_size": 8, "checkpoint_every": 3, "log_every": 3}
    alone = train(_recipe(**recipe), tiny_cache, tmp_path / "alone")
    workers = _recipe(**recipe, num_workers=2)
    reference = train(workers, tiny_cache, tmp_path / "reference")
    real = student_module.save_checkpoint

    def stop_after_it(run_dir, *args):
        real(run_dir, *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(student_module, "save_checkpoint", stop_after_it)
    with pytest.raises(KeyboardInterrupt):
        train(workers, tiny_cache, tmp_path / "stopped")
    monkeypatch.undo()
    resumed = train(workers, tiny_cache, tmp_path / "stopped")
    assert [r["step"] for r in _loss_rows(tmp_path / "stopped")] == [3, 6]  # step 3 before the stop, then 6
    expected = _weights(alone.student_dir)
    for result in (reference, resumed):
        for name, value in _weights(result.student_dir).items():
            torch.testing.assert_close(value, expected[name], rtol=0, atol=0)
    stopped = _optimizer_state(tmp_path / "stopped")
    for index, state in _optimizer_state(tmp_path / "reference").items():
        for key, value in state.items():
            torch.testing.assert_close(stopped[index][key], value, rtol=0, atol=0)


def test_missing_feature_is_refused_before_training(logits_cache, tmp_path):
    logits_only = logits_cache
    recipe = _recipe(student={"name": "bert_from_teacher", "num_layers": 1}, losses={"pkd": {}})
    with pytest.raises(ConfigError, match=r"loss 'pkd' needs teacher cls .* relabel with --features cls"):
        train(recipe, logits_only, tmp_path / "run")
    narrow = {"name": "narrow_bert", "num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 4,
              "intermediate_size": 32}
    with pytest.raises(ConfigError, match=r"loss 'minilm' needs teacher relation of layer\(s\) \[2\] .*"
                                          r"--features relation --set label.relation_layers=\[2\]"):
        train(_recipe(student=narrow, losses={"minilm": {}}), logits_only, tmp_path / "run")
    with pytest.raises(ConfigError, match="student 'bilstm' has no self-attention to distil"):
        train(_recipe(student={"name": "bilstm"}, losses={"tinybert_attention": {}}), logits_only, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint-last").exists()


def test_minilm_recipe_distils_relations_into_a_shallower_student(tiny_cache, tmp_path):
    """The bundled MiniLM recipe, shrunk to the tiny teacher: its relation stage lowers the KL (student layer 1 of
    1 against teacher layer 2 of 2), then the prediction stage runs; the cache holds one layer input per example."""
    cache = load(tiny_cache)
    assert cache.features.relation_layers == [2] and "value.weight" in cache.attention_weights()[2]
    data = yaml.safe_load((REPO_RECIPES / "minilm.yaml").read_text())
    data["student"].update(num_hidden_layers=1, hidden_size=16, num_attention_heads=4, intermediate_size=32)
    data["stages"][0].update(max_steps=40, learning_rate=0.02, warmup_ratio=0.0)
    data["stages"][1].update(max_steps=3)
    recipe = TrainConfig.from_dict({**data, "log_every": 1})
    run_dir = train(recipe, tiny_cache, tmp_path / "run").run_dir
    relations = [r["loss_minilm"] for r in _loss_rows(run_dir) if "loss_minilm" in r]
    assert len(relations) == 40 and sum(relations[-5:]) < 0.75 * sum(relations[:5]), relations  # ~0.65 measured
    assert len([r for r in _loss_rows(run_dir) if "loss_soft_ce" in r]) == 3


def _start_training(recipe: dict, cache, run_dir, recipe_file):
    """`pipelines/train_student.py` on `recipe` in its own process group (for `kill_group_when`)."""
    import subprocess
    import sys

    import yaml

    from tests.conftest import REPO

    recipe_file.write_text(yaml.safe_dump(recipe))
    return subprocess.Popen([sys.executable, "pipelines/train_student.py", "--recipe", str(recipe_file),
                             "--cache", str(cache), "--out", str(run_dir)], cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _metric_rows(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _weights(directory):
    from safetensors.torch import load_file

    return load_file(str(directory / "model.safetensors"))


def test_bert_student_checkpoint_loads_with_from_pretrained_and_resumes(tiny_cache, tmp_path):
    """Killed after a checkpoint, the same recipe resumes from it (the steps left, not all of them) to an
    uninterrupted run's weights; the student loads with from_pretrained; a finished run trains no more."""
    from transformers import AutoModelForSequenceClassification

    from distill.train.run_dir import read_state
    from tests.conftest import kill_group_when

    total = 200
    recipe = {"student": {"name": "bert_from_teacher", "num_layers": 1, "layers": "first"},
              "losses": {"ce": {"weight": 0.3}, "kd": {"weight": 0.7}}, "max_steps": total, "checkpoint_every": 5,
              "log_every": 1, "learning_rate": 1e-3}
    run_dir = tmp_path / "run"
    state_file = run_dir / "checkpoint-last" / "trainer_state.json"
    proc = _start_training(recipe, tiny_cache, run_dir, tmp_path / "recipe.yaml")
    kill_group_when(proc, state_file.exists, poll_seconds=0.01)
    killed = read_state(run_dir)  # a kill between the checkpoint's renames leaves it in .old
    killed_at = killed["global_step"]
    assert 5 <= killed_at < total and killed_at % 5 == 0
    logged_before = len(_metric_rows(run_dir))

    started = time.perf_counter()
    resumed = train(_recipe(**recipe), tiny_cache, run_dir, DEV, SENTENCE, teacher_report=False)
    this_process = time.perf_counter() - started
    assert resumed.steps == total
    # the run's time: the killed process's, up to its checkpoint, then this one's
    assert killed["seconds"] > 0 and killed["seconds"] < resumed.seconds < killed["seconds"] + this_process
    assert json.loads((run_dir / "timing.json").read_text())["seconds"] == resumed.seconds
    trained = [r["step"] for r in _metric_rows(run_dir)[logged_before:] if "loss" in r]
    assert trained == list(range(killed_at + 1, total + 1))  # only the steps after the checkpoint
    reference = train(_recipe(**recipe), tiny_cache, tmp_path / "reference")
    final = _weights(resumed.student_dir)
    assert final.keys() == _weights(reference.student_dir).keys()
    for name, value in _weights(reference.student_dir).items():
        torch.testing.assert_close(final[name], value, rtol=0, atol=0)

    model = AutoModelForSequenceClassification.from_pretrained(resumed.student_dir)
    assert model.config.num_hidden_layers == 1
    reloaded = load_student(resumed.student_dir)
    batch = load(tiny_cache).batch([0, 1, 2])
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()(batch).logits, model.eval()(**{k: batch[k] for k in ("input_ids", "attention_mask")}).logits)
    rows = _metric_rows(run_dir)
    assert any("dev_accuracy" in r for r in rows) and (run_dir / "curves.png").stat().st_size > 1000
    state = json.loads(state_file.read_text())
    assert state["global_step"] == total and state["stage"] == 1

    # finished: the same recipe again resumes at the end and trains nothing more
    checkpoint = {p.name: p.stat().st_mtime_ns for p in state_file.parent.iterdir()}
    again = train(_recipe(**recipe), tiny_cache, run_dir, DEV, SENTENCE, teacher_report=False)
    assert again.steps == total and _metric_rows(run_dir) == rows
    assert {p.name: p.stat().st_mtime_ns for p in state_file.parent.iterdir()} == checkpoint
    for name, value in _weights(again.student_dir).items():
        torch.testing.assert_close(final[name], value, rtol=0, atol=0)


def test_kill_during_training_then_resume_matches_an_uninterrupted_run(tiny_cache, tmp_path):
    from distill.train.run_dir import read_state
    from tests.conftest import kill_group_when

    recipe = {"student": {"name": "bilstm", "embedding_dim": 64, "hidden_size": 64, "mlp_size": 32},
              "losses": {"ce": {"weight": 0.5}, "logit_mse": {"weight": 0.5}}, "max_steps": 300,
              "checkpoint_every": 20, "learning_rate": 0.001, "batch_size": 16}
    run_dir = tmp_path / "killed"
    proc = _start_training(recipe, tiny_cache, run_dir, tmp_path / "recipe.yaml")
    state_file = run_dir / "checkpoint-last" / "trainer_state.json"
    kill_group_when(proc, state_file.exists, poll_seconds=0.02, timeout=120)
    killed_at = read_state(run_dir)["global_step"]
    assert 20 <= killed_at < 300
    resumed = train(_recipe(**recipe), tiny_cache, run_dir)
    assert resumed.steps == 300
    steps = [json.loads(x)["step"] for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 300
    reference = train(_recipe(**recipe), tiny_cache, tmp_path / "reference")
    for name, value in _weights(reference.student_dir).items():
        torch.testing.assert_close(_weights(resumed.student_dir)[name], value, rtol=0, atol=0)


@pytest.fixture(scope="module")
def minilm_cache(augmented, minilm_dir, tmp_path_factory):
    """A real teacher: MiniLM-L6 fine-tuned on the sample, labelling the augmented sample."""
    from distill.finetune import FinetuneConfig, finetune

    teacher = tmp_path_factory.mktemp("teacher")
    finetune(SAMPLES / "sentiment.csv", teacher, FinetuneConfig.from_dict(
        {"base_model": str(minilm_dir), "columns": {"text_a": "sentence"}, "epochs": 4, "learning_rate": 1e-4}))
    return run(augmented, tmp_path_factory.mktemp("label-minilm"), LabelConfig(teacher=str(teacher))).cache_dir


def test_bilstm_student_learns_from_the_cache_and_tracks_the_teacher(minilm_cache, tmp_path):
    recipe = TrainConfig.load(REPO_RECIPES / "tang_bilstm.yaml", ["max_steps=300"])
    result = train(recipe, minilm_cache, tmp_path / "run", DEV, SENTENCE)
    student, teacher = result.report["student"], result.report["teacher"]
    assert teacher["accuracy"] > 0.8  # the fine-tuned teacher is good on unseen dev sentences
    assert student["accuracy"] > 0.7  # chance is 0.5 (40/40 dev sentences)
    assert student["accuracy"] > teacher["accuracy"] - 0.2
    assert student["parameters"] < teacher["parameters"]
    assert (result.run_dir / "report.md").read_text().startswith("| model |")
