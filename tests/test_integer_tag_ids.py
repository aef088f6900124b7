"""Defect 1 of issue 24: integer tag ids were taken for `O`, so mask and pos replaced entity words
(which kept their entity tags). Bare ids without names are refused before any work; a `datasets`
`ClassLabel` column reaches the rules as its names."""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pytest

from augment import AugmentConfig, run
from augment.augmenter import Augmenter, TokenRows
from augment.rules.mention import entity_type, mention_spans
from distill.errors import InputError
from distill.storage.shards import read_shards

MESSAGE = "tags are integer ids without names; give tag names (B-PER, ...) or a ClassLabel feature"
NAMES = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
SENTENCES = [(["Anna", "Berg", "flew", "to", "Oslo", "today"], [1, 2, 0, 0, 3, 0]),
             (["The", "talks", "in", "New", "York", "ended"], [0, 0, 0, 3, 4, 0])]


def _config(rules) -> AugmentConfig:
    return AugmentConfig.from_dict({"columns": {"tokens": "tokens", "tags": "tags"}, "rules": rules,
                                    "tang": {"n_iter": 4}})


@pytest.mark.parametrize("rules", [{"mask": {"p": 1.0}}, ["pos"], ["mention"], ["mask", "pos", "mention"]])
def test_integer_tag_ids_are_refused_before_any_work(tmp_path, rules):
    path = tmp_path / "ids.jsonl"
    path.write_text("".join(json.dumps({"tokens": words, "tags": tags}) + "\n" for words, tags in SENTENCES))
    with pytest.raises(InputError) as err:
        run(path, tmp_path / "out", _config(rules))
    assert str(err.value) == f"{path}: {MESSAGE}"
    assert not (tmp_path / "out").exists()


def test_integer_tag_ids_are_never_taken_for_outside():
    """Below the stage too: the rules refuse an id rather than guess which words are `O`."""
    for tag in (0, 3):
        with pytest.raises(TypeError, match=re.escape(MESSAGE)):
            entity_type(tag)
    with pytest.raises(TypeError, match=re.escape(MESSAGE)):
        mention_spans([0, 3, 4, 0])
    table = pa.table({"row": [1], "source_id": ["0"], "tokens": [SENTENCES[0][0]], "tags": [SENTENCES[0][1]]})
    with pytest.raises(InputError, match=re.escape(MESSAGE)):
        TokenRows.check(table, "ids.jsonl")
    with pytest.raises(TypeError, match=re.escape(MESSAGE)):
        Augmenter(_config({"mask": {"p": 1.0}}), pa.int64()).augment(table)


@pytest.mark.slow
def test_classlabel_tags_keep_entity_words_unmasked(ray_local, tmp_path):
    """The issue's case: a `save_to_disk` folder with `Sequence(ClassLabel)` tags and mask p = 1.0."""
    import datasets

    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "tags": datasets.Sequence(datasets.ClassLabel(names=NAMES))})
    words, tags = zip(*SENTENCES)
    datasets.Dataset.from_dict({"tokens": list(words), "tags": list(tags)}, features=features).save_to_disk(
        str(tmp_path / "ner"))
    run(tmp_path / "ner", tmp_path / "out", _config({"mask": {"p": 1.0}}))
    rows = read_shards(tmp_path / "out").to_pylist()
    assert {row["rule"] for row in rows} == {"original", "mask"}
    for row in rows:
        source_words, source_tags = SENTENCES[int(row["source_id"])]
        assert row["tags"] == [NAMES[t] for t in source_tags]
        expected = [w if t else "[MASK]" for w, t in zip(source_words, source_tags)]
        assert row["tokens"] == (source_words if row["aug_index"] == 0 else expected)
