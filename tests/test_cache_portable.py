"""A teacher cache is a dataset you can hand to someone else: copied to another directory or put on
S3, with the teacher deleted, it trains the same student and evaluates it; students that copy
teacher weights take a verified `--teacher`; run directories and cache files are trusted only
once verified."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pyarrow.fs as pafs
import pytest
import torch
from safetensors.torch import load_file

import augment
from distill.cache import FORMAT_VERSION, CacheCorruptError, load
from distill.cache.assets import read_input_embeddings
from distill.cache.teacher_ref import TeacherRequiredError
from distill.common.models import INPUT_EMBEDDINGS, model_tensor
from distill.label import LabelConfig, run
from distill.train.config import TrainConfig
from distill.train.loop import train
from distill.train.run_dir import RunMismatchError
from pipelines.train_student import main as train_cli
from tests.conftest import BUCKET, SAMPLES, build_tiny_teacher, run_card_code

pytestmark = pytest.mark.slow
DEV = SAMPLES / "sentiment_dev.csv"
RECIPE = SAMPLES.parent / "configs" / "students" / "tang_bilstm.yaml"
# The demo's BiLSTM recipe (embeddings initialised from the teacher's), shrunk to a short run.
OVERRIDES = ["max_steps=12", "batch_size=16", "student.hidden_size=16", "student.mlp_size=16", "checkpoint_every=5"]
COMMAND = "python pipelines/augment_and_label.py --input sentiment.csv --output out/run"


def _weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "model.safetensors"))


def _assert_same_weights(a: Path, b: Path) -> None:
    left, right = _weights(a), _weights(b)
    assert left.keys() == right.keys()
    for name, value in left.items():
        torch.testing.assert_close(right[name], value, rtol=0, atol=0, msg=name)


@pytest.fixture(scope="module")
def portable(ray_local, tiny_teacher_dir, tmp_path_factory):
    """Label with a private copy of the tiny teacher, train the reference student while the teacher
    is there, then delete the teacher."""
    base = tmp_path_factory.mktemp("portable")
    teacher = base / "teacher"
    shutil.copytree(tiny_teacher_dir, teacher)
    config = augment.AugmentConfig.load(None, ["columns.text_a=sentence", "rules=[mask, ngram]", "tang.n_iter=2",
                                                "rows_per_shard=200"])
    augment.run(SAMPLES / "sentiment.csv", base / "out" / "augmented", config)
    cache_dir = run(base / "out" / "augmented", base / "out", LabelConfig(teacher=str(teacher), features=["cls"]),
                    command=COMMAND).cache_dir
    stored = read_input_embeddings(cache_dir)  # the rows a BiLSTM starts from are the teacher's own
    torch.testing.assert_close(stored["rows"], model_tensor(teacher, INPUT_EMBEDDINGS)[stored["token_ids"]], rtol=0, atol=0)
    reference = train(TrainConfig.load(RECIPE, OVERRIDES), cache_dir, base / "reference", DEV, _sentence())
    shutil.rmtree(teacher)
    return {"cache": cache_dir, "reference": reference, "base": base}


def _sentence():
    from distill.common.columns import Columns

    return Columns(text_a="sentence")


def _teacher_accuracy(teacher_dir: Path) -> float:
    """The teacher's dev accuracy worked out here with transformers alone, one unpadded sentence at a time."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    model = AutoModelForSequenceClassification.from_pretrained(teacher_dir).eval()
    with open(DEV, encoding="utf-8") as handle, torch.no_grad():
        right = [int(model(**tokenizer(row["sentence"], return_tensors="pt")).logits.argmax()) == int(row["label"])
                 for row in csv.DictReader(handle)]
    return sum(right) / len(right)


def test_the_cache_carries_its_teacher_files_and_a_card(portable, tiny_teacher_dir):
    cache = load(portable["cache"])
    assert cache.manifest["format_version"] == FORMAT_VERSION
    assert cache.tokenizer()("a fine film")["input_ids"][0] == cache.manifest["tokenizer"]["cls_token_id"]
    assert cache.teacher_config().num_hidden_layers == cache.dims.num_layers == 2
    assert set(cache.manifest["teacher_files"]) >= {"config.json", "tokenizer.json", "input_embeddings.safetensors"}
    modes = {f.name: f.stat().st_mode for f in cache.teacher_files.iterdir()}
    assert set(modes.values()) == {modes["config.json"]}, modes  # readable by whoever may read the rest
    card = (portable["cache"] / "README.md").read_text()
    for expected in ("## What was labelled", "[CLS] of layers: 1, 2", "`cls`", "bytes / example", COMMAND,
                     "datasets.Dataset.from_file", "ray.data.from_arrow", "distill.cache.load"):
        assert expected in card, expected
    # the teacher was there for the reference and was scored on the dev set (its files equal tiny_teacher_dir's)
    assert portable["reference"].report["teacher"]["accuracy"] == pytest.approx(_teacher_accuracy(tiny_teacher_dir))
    scope = run_card_code(portable["cache"])  # the card's loading recipes work as written
    assert scope["table"].num_rows == len(scope["ds"]) == scope["rows"].count() == len(cache)
    assert scope["table"].column("uid").to_pylist() == cache.table.column("uid").to_pylist()


def test_a_copied_cache_trains_the_same_student_with_no_teacher(portable, tmp_path, capsys, monkeypatch):
    copy = tmp_path / "elsewhere" / "cache"
    shutil.copytree(portable["cache"], copy)
    monkeypatch.chdir(tmp_path)  # the manifest's paths are not what makes it work
    assert train_cli(["--recipe", str(RECIPE), "--cache", str(copy), "--out", str(tmp_path / "run"), "--eval", str(DEV),
                      "--text-a", "sentence", *[a for o in OVERRIDES for a in ("--set", o)]]) == 0
    _assert_same_weights(portable["reference"].student_dir, tmp_path / "run" / "student")
    report = (tmp_path / "run" / "report.md").read_text()
    assert "| student |" in report and "| teacher |" not in report
    assert "Teacher row omitted: not reachable" in report and "--teacher" in report
    assert json.loads((tmp_path / "run" / "report.json").read_text())["student"]["accuracy"] == \
        portable["reference"].report["student"]["accuracy"]


def test_a_cache_on_s3_trains_the_same_student(portable, s3, tmp_path, monkeypatch):
    pafs.copy_files(str(portable["cache"]), f"{BUCKET}/shared/cache", source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=s3)
    monkeypatch.setenv("DISTILL_STAGING", str(tmp_path / "staging"))  # a fresh machine: nothing staged yet
    result = train(TrainConfig.load(RECIPE, OVERRIDES), f"s3://{BUCKET}/shared/cache", tmp_path / "run", DEV, _sentence())
    _assert_same_weights(portable["reference"].student_dir, result.student_dir)
    assert "teacher" not in result.report


def test_students_that_copy_teacher_weights_take_a_verified_teacher(portable, tiny_teacher_dir, tmp_path):
    recipe = TrainConfig.from_dict({"student": {"name": "bert_from_teacher", "num_layers": 1}, "losses": {"kd": {}},
                                    "max_steps": 2})
    out = tmp_path / "run"
    with pytest.raises(TeacherRequiredError, match=r"bert_from_teacher .* needs the teacher's weights.*--teacher"):
        train(recipe, portable["cache"], out)
    other = build_tiny_teacher(tmp_path / "other-teacher", tiny_teacher_dir, seed=1)
    with pytest.raises(TeacherRequiredError, match=r"not the teacher this cache was labelled with"):
        train(recipe, portable["cache"], out, teacher=str(other))
    with pytest.raises(TeacherRequiredError, match=r"--online needs the teacher's weights"):
        train(TrainConfig.load(RECIPE, OVERRIDES), portable["cache"], out, online=True)
    assert not out.exists()  # refused runs write nothing that would block the corrected one
    copy = shutil.copytree(tiny_teacher_dir, tmp_path / "a-copy")  # same files as the deleted teacher
    result = train(recipe, portable["cache"], out, DEV, _sentence(), teacher=str(copy))
    assert result.steps == 2 and "teacher" in result.report


def test_a_student_needing_teacher_weights_fails_in_one_line_on_the_cli(portable, tmp_path, capsys):
    assert train_cli(["--recipe", str(RECIPE), "--cache", str(portable["cache"]), "--out", str(tmp_path / "run"),
                      "--set", "student={name: bert_from_teacher, num_layers: 1}", "--set", "max_steps=1"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: bert_from_teacher") and "--teacher PATH_OR_NAME" in error and "\n" not in error


def test_a_changed_recipe_is_refused_and_overwrite_starts_over(portable, tmp_path):
    out = tmp_path / "run"
    first = train(TrainConfig.load(RECIPE, OVERRIDES), portable["cache"], out)
    assert first.steps == 12
    first_weights = _weights(first.student_dir)
    again = train(TrainConfig.load(RECIPE, OVERRIDES), portable["cache"], out)  # same recipe: finished, nothing to do
    assert again.steps == 12
    _assert_same_weights(first.student_dir, again.student_dir)
    changed = TrainConfig.load(RECIPE, [*OVERRIDES, "learning_rate=0.01"])
    with pytest.raises(RunMismatchError, match=r"holds another recipe or cache .*--overwrite"):
        train(changed, portable["cache"], out)
    assert json.loads((out / "recipe.json").read_text())["recipe"]["learning_rate"] == 0.001  # still describes its student
    redone = train(changed, portable["cache"], out, overwrite=True)
    assert redone.steps == 12 and json.loads((out / "recipe.json").read_text())["recipe"]["learning_rate"] == 0.01
    assert not torch.equal(_weights(redone.student_dir)["classifier.0.weight"], first_weights["classifier.0.weight"])


def test_a_corrupted_cache_shard_is_refused_before_training(portable, tmp_path):
    copy = shutil.copytree(portable["cache"], tmp_path / "cache")
    shard = sorted(copy.glob("part-*.arrow"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit inside the column buffers
    shard.write_bytes(bytes(data))
    recipe = TrainConfig.load(RECIPE, OVERRIDES)
    with pytest.raises(CacheCorruptError, match=rf"{shard.name}: sha256 mismatch .*rerun `{COMMAND}`"):
        train(recipe, copy, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint-last").exists()
    shard.write_bytes(bytes(data[:-10]))  # a truncated shard fails even the cheap size-only check
    with pytest.raises(CacheCorruptError, match=r"size \d+ != recorded"):
        train(recipe, copy, tmp_path / "run", verify="size")
