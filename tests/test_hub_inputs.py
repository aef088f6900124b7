"""Hugging Face datasets wherever a file is accepted: hub names, dataset folders, save_to_disk directories."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.csv as pcsv
import pytest

import augment
from distill.common.columns import Columns
from distill.common.inputs.source import OFFLINE_HINT, HubName, hub_name
from distill.common.inputs.source import input_format
from distill.common.inputs.text import read_text_table
from distill.errors import InputError
from tests.conftest import SAMPLES


@pytest.mark.parametrize("given, expected", [
    ("glue/sst2", HubName("glue", "sst2")),  # GLUE convention: dataset/configuration
    ("super_glue/boolq", HubName("super_glue", "boolq")),
    ("hf://nyu-mll/glue:sst2", HubName("nyu-mll/glue", "sst2")),
    ("stanfordnlp/imdb", HubName("stanfordnlp/imdb")),  # any other a/b is a repository
    ("imdb", HubName("imdb")),
    ("owner/name:config", HubName("owner/name", "config")),
    ("./glue/sst2", None), ("/data/train", None), ("a/b/c", None), ("train.csv", None), ("dev.jsonl", None),
])
def test_hub_names_are_told_from_local_paths(given, expected):
    assert hub_name(given) == expected


def test_an_existing_local_path_is_never_a_hub_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "imdb").mkdir()
    assert hub_name("imdb") is None and input_format("imdb") == "datasets"


def test_a_hub_name_offline_fails_in_one_line_naming_what_it_needs():
    with pytest.raises(InputError) as err:
        read_text_table("glue/sst2", Columns(text_a="sentence"))
    message = str(err.value)
    assert message.startswith("glue:sst2: not a local file or folder, and the hub dataset could not be loaded")
    assert message.endswith(OFFLINE_HINT) and "\n" not in message


def _save_sample(path):
    import datasets

    table = pcsv.read_csv(SAMPLES / "sentiment.csv")
    datasets.DatasetDict({"train": datasets.Dataset(table.slice(0, 200)),
                          "validation": datasets.Dataset(table.slice(200))}).save_to_disk(str(path))
    return path


def test_save_to_disk_folders_and_data_file_folders_read_like_files(tmp_path):
    saved = _save_sample(tmp_path / "saved")
    columns = Columns(text_a="sentence")
    train = read_text_table(saved, columns).table
    validation = read_text_table(saved, Columns(text_a="sentence", split="validation")).table
    whole = read_text_table(SAMPLES / "sentiment.csv", columns).table
    assert train.num_rows == 200 and train.num_rows + validation.num_rows == whole.num_rows
    assert train.column("text_a").to_pylist() == whole.column("text_a").to_pylist()[:200]
    with pytest.raises(InputError, match=r"no split 'test' \(splits: train, validation\)"):
        read_text_table(saved, Columns(text_a="sentence", split="test"))

    # a folder of data files, as a hub dataset cloned to disk: datasets.load_dataset(folder, split=...)
    files = tmp_path / "files"
    (files / "data").mkdir(parents=True)
    (files / "data" / "train.jsonl").write_text("".join(
        json.dumps({"sentence": s, "label": lab}) + "\n"
        for s, lab in zip(whole.column("text_a").to_pylist()[:30], whole.column("label").to_pylist()[:30])))
    cloned = read_text_table(files, columns).table
    assert cloned.column("text_a").to_pylist() == whole.column("text_a").to_pylist()[:30]


@pytest.mark.slow
def test_augment_takes_a_dataset_split_and_records_it(ray_local, tmp_path):
    saved = _save_sample(tmp_path / "saved")
    config = augment.AugmentConfig.load(None, ["columns.text_a=sentence", "columns.split=validation", "rules=[mask]",
                                                "tang.n_iter=1"])
    result = augment.run(saved, tmp_path / "aug", config)
    manifest = result.manifest
    assert manifest["input"]["format"] == "datasets" and manifest["totals"]["source_rows"] == 100
    again = augment.run(saved, tmp_path / "aug", config)  # same folder, same split: the finished output is reused
    assert again.skipped


def test_the_pipeline_refuses_an_unreachable_hub_input_in_one_line_and_writes_nothing(tiny_teacher_dir, tmp_path,
                                                                                     capsys):
    from pipelines import augment_and_label

    assert hub_name(Path("glue/sst2")) == HubName("glue", "sst2")  # as the pipeline passes it on
    code = augment_and_label.main(["--input", "glue/sst2", "--split", "validation", "--output", str(tmp_path / "out"),
                                   "--teacher", str(tiny_teacher_dir), "--text-a", "sentence"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and err.startswith("error: glue:sst2: not a local file or folder") and err.endswith(OFFLINE_HINT)
    assert not (tmp_path / "out").exists()
