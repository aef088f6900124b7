"""Labels and tags by name: a dataset's `ClassLabel` ids arrive as their names, so the augment rules
see entity tags and gold labels meet the teacher's `label2id` by name, never by position."""

from __future__ import annotations

import pytest

from distill.common.columns import Columns
from distill.common.inputs.text import read_text_table
from distill.common.labels import LabelSpace
from distill.errors import InputError

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
SENTENCES = [
    (["Ann", "Lee", "lives", "in", "Rome", "."], [1, 2, 0, 0, 3, 0]),
    (["Bob", "flew", "to", "New", "York", "today"], [1, 0, 0, 3, 4, 0]),
    (["the", "cat", "sat", "with", "Carl"], [0, 0, 0, 0, 1]),
    (["Paris", "is", "far", "from", "Oslo"], [3, 0, 0, 0, 3]),
]


def _tagged_folder(path):
    import datasets

    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "tags": datasets.Sequence(datasets.ClassLabel(names=TAGS))})
    datasets.Dataset.from_dict({"tokens": [w for w, _ in SENTENCES], "tags": [t for _, t in SENTENCES]},
                               features=features).save_to_disk(str(path))
    return path


def test_classlabel_tags_and_labels_are_read_as_names(tmp_path):
    import datasets

    text = read_text_table(_tagged_folder(tmp_path / "ner"), Columns(tokens="tokens", tags="tags"))
    assert text.table.column("tags").to_pylist()[0] == ["B-PER", "I-PER", "O", "O", "B-LOC", "O"]
    labels = datasets.ClassLabel(names=["positive", "negative"])
    datasets.Dataset.from_dict({"text_a": ["good", "bad", "unknown"], "label": [0, 1, -1]},
                               features=datasets.Features({"text_a": datasets.Value("string"), "label": labels}),
                               ).to_parquet(str(tmp_path / "sst.parquet"))  # a parquet file keeps its ClassLabel
    assert read_text_table(tmp_path / "sst.parquet", Columns()).table.column("label").to_pylist() == [
        "positive", "negative", None]  # -1: no label


@pytest.mark.slow
def test_classlabel_tags_are_names_not_outside(ray_local, tmp_path):
    """Integer tag ids from a `Sequence(ClassLabel)` were taken for O: masking at p=1 hid entity words."""
    import augment
    from distill.storage.shards import read_shards

    config = augment.AugmentConfig.from_dict({"columns": {"tokens": "tokens", "tags": "tags"},
                                              "rules": {"mask": {"p": 1.0}}, "tang": {"n_iter": 2}})
    augment.run(_tagged_folder(tmp_path / "ner"), tmp_path / "out", config)
    rows = read_shards(tmp_path / "out").to_pylist()
    words = {row["source_id"]: row["tokens"] for row in rows if row["aug_index"] == 0}
    augmented = [row for row in rows if row["aug_index"] > 0]
    assert augmented and words
    masked = 0
    for row in augmented:
        names = [TAGS[t] if isinstance(t, int) else t for t in row["tags"]]
        for word, original, tag in zip(row["tokens"], words[row["source_id"]], names):
            assert word == original or tag == "O", (row, tag)
            masked += word == "[MASK]"
    assert masked >= 10  # every O word but punctuation


def _classlabel_dataset(path, names: list[str], labels: list[int]):
    import datasets

    features = datasets.Features({"text_a": datasets.Value("string"), "label": datasets.ClassLabel(names=names)})
    datasets.Dataset.from_dict({"text_a": [f"sentence {i}" for i in range(len(labels))], "label": labels},
                               features=features).save_to_disk(str(path))
    return path


def _teacher(id2label: dict[int, str]) -> LabelSpace:
    """A teacher's label space as `prepare_teacher` builds it, from its config."""
    return LabelSpace.from_config({"id2label": {str(i): n for i, n in id2label.items()},
                                   "label2id": {n: i for i, n in id2label.items()}})


def test_classlabel_labels_map_to_teacher_names_by_name(tmp_path):
    """ClassLabel ids were used as teacher ids: a teacher ordering its labels otherwise was misaligned."""
    folder = _classlabel_dataset(tmp_path / "sst", ["positive", "negative"], [0, 1, 1, 0])
    table = read_text_table(folder, Columns()).table
    labels, rows = table.column("label").to_pylist(), table.column("row").to_pylist()
    assert labels == ["positive", "negative", "negative", "positive"]
    assert _teacher({0: "negative", 1: "positive"}).ids(labels, rows, str(folder)) == [1, 0, 0, 1]

    with pytest.raises(InputError) as err:
        _teacher({0: "neg", 1: "pos"}).ids(labels, rows, str(folder))
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{folder}: row 1: label 'positive' is not one of the teacher's")
    assert "['neg', 'pos']" in message and "['negative', 'positive']" in message


def test_plain_integer_labels_stay_positions_for_generic_teachers(tmp_path):
    path = tmp_path / "ints.csv"
    path.write_text("text_a,label\ngood,1\nbad,0\n")
    table = read_text_table(path, Columns()).table
    generic = _teacher({0: "LABEL_0", 1: "LABEL_1"})
    assert generic.ids(table.column("label").to_pylist(), table.column("row").to_pylist(), str(path)) == [1, 0]
