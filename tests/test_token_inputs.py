"""Token-task inputs (NER shape): CoNLL text, jsonl / parquet / datasets word and tag columns, rejects."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill.common.columns import Columns
from distill.common.inputs.text import read_text_table
from distill.common.inputs.tokens import read_token_table, tag_names
from distill.errors import InputError
from tests.conftest import SAMPLES

TOKENS = Columns(tokens="tokens", tags="tags")


def _jsonl(path, rows) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_conll_sample_skips_docstart_and_blank_lines():
    text = read_text_table(SAMPLES / "ner.conll", Columns())  # CoNLL implies tokens/tags
    rows = text.table.to_pylist()
    assert text.rejects == [] and text.rows_read == 5 and len(rows) == 5
    assert text.table.schema.names == ["row", "source_id", "tokens", "tags"]
    assert rows[0]["tokens"][:3] == ["EU", "rejects", "German"] and rows[0]["tags"][:3] == ["B-ORG", "O", "B-MISC"]
    assert rows[1] == {"row": 2, "source_id": "1", "tokens": ["Peter", "Blackburn"], "tags": ["B-PER", "I-PER"]}
    assert all("-DOCSTART-" not in r["tokens"] for r in rows)
    assert [r["row"] for r in rows] == [1, 2, 3, 4, 5]
    assert tag_names(text.table) == ["B-LOC", "B-MISC", "B-ORG", "B-PER", "I-ORG", "I-PER", "O"]


def test_conll_rejects_name_row_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"-DOCSTART- O\n\nA O\nB B-PER\n\n\n\nbroken\nC O\n\nD O\nbad\xff O\n\nE B-LOC\n")
    with pytest.raises(InputError, match="unsupported input format"):
        read_text_table(path, Columns())  # .txt is not CoNLL unless the config says so
    text = read_token_table(path, Columns(format="conll"))
    assert [r["tokens"] for r in text.table.to_pylist()] == [["A", "B"], ["E"]]
    assert text.rows_read == 4
    assert text.rejects == [
        {"file": str(path), "row": 2, "field": "tags", "reason": "line 8 has no tag column (word and tag separated by whitespace)"},
        {"file": str(path), "row": 3, "field": "tokens", "reason": "invalid UTF-8 at line 12, byte 3"},
    ]


def test_conll_binary_file_is_one_error(tmp_path):
    path = tmp_path / "x.conll"
    path.write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(InputError, match="not a text file"):
        read_text_table(path, Columns())


def test_jsonl_rows_and_rejects(tmp_path):
    path = _jsonl(tmp_path / "t.jsonl", [
        {"id": "a", "tokens": ["John", "runs"], "tags": ["B-PER", "O"]},
        {"id": "b", "tokens": ["x", "y"], "tags": ["O"]},
        {"id": "c", "tokens": [], "tags": []},
        {"id": "d", "tokens": ["x", 3], "tags": ["O", "O"]},
        {"id": "e", "tokens": "John runs", "tags": ["O"]},
        {"id": "f", "words": ["x"], "tags": ["O"]},
        {"id": "g", "tokens": ["x"], "tags": [1]},
        {"id": "h", "tokens": ["Unlabelled", "sentence"], "tags": None},
        {"id": "a", "tokens": ["dup"], "tags": ["O"]},
        "not json",
        {"id": "i", "tokens": ["x", " "], "tags": ["O", "O"]},
    ])
    text = read_text_table(path, Columns(tokens="tokens", tags="tags", id="id"))
    assert text.table.to_pylist() == [
        {"row": 1, "source_id": "a", "tokens": ["John", "runs"], "tags": ["B-PER", "O"]},
        {"row": 8, "source_id": "h", "tokens": ["Unlabelled", "sentence"], "tags": None},
    ]
    reasons = {r["row"]: (r["field"], r["reason"]) for r in text.rejects}
    assert all(r["file"] == str(path) for r in text.rejects)
    assert reasons == {
        2: ("tags", "1 tags for 2 words"),
        3: ("tokens", "empty sentence"),
        4: ("tokens", "tokens[1] is int, not a string"),
        5: ("tokens", "tokens is str, not a list of words"),
        6: ("tokens", "missing field 'tokens'"),
        7: ("tags", "tags[0] is int, but earlier tags are str"),
        9: ("id", "duplicate id 'a'"),
        10: (None, "invalid JSON (Expecting value)"),
        11: ("tokens", "tokens[1] is empty"),
    }
    assert text.rows_read == 11 == text.table.num_rows + len(text.rejects)


def test_integer_tags_stay_ints(tmp_path):
    path = _jsonl(tmp_path / "ids.jsonl", [{"w": ["EU", "rejects"], "t": [3, 0]}, {"w": ["x"], "t": [True]}])
    text = read_text_table(path, Columns(tokens="w", tags="t"))
    assert text.table.schema.field("tags").type == pa.list_(pa.int64())
    assert text.table.column("tags").to_pylist() == [[3, 0]]
    assert text.rejects[0]["reason"] == "t[0] is bool, not a string or an integer id"
    assert tag_names(text.table) == [0, 3]


def test_parquet_and_datasets_token_columns(tmp_path):
    table = pa.table({"words": [["Ann", "lives", "in", "Rome"], ["Hi"]], "ner": [["B-PER", "O", "O", "B-LOC"], ["O", "O"]]})
    pq.write_table(table, tmp_path / "t.parquet")
    text = read_text_table(tmp_path / "t.parquet", Columns(tokens="words", tags="ner"))
    assert text.table.column("tokens").to_pylist() == [["Ann", "lives", "in", "Rome"]]
    assert text.rejects == [{"file": str(tmp_path / "t.parquet"), "row": 2, "field": "ner", "reason": "2 tags for 1 words"}]
    with pytest.raises(InputError, match="no column 'tags'"):
        read_text_table(tmp_path / "t.parquet", Columns(tokens="words", tags="tags"))
    pq.write_table(pa.table({"tokens": ["one string"], "tags": [["O"]]}), tmp_path / "flat.parquet")
    with pytest.raises(InputError, match="'tokens' is string, not a list"):
        read_text_table(tmp_path / "flat.parquet", TOKENS)

    import datasets

    datasets.Dataset.from_dict({"tokens": [["a", "b"]], "tags": [["O", "B-MISC"]]}).save_to_disk(str(tmp_path / "ds"))
    text = read_text_table(tmp_path / "ds", TOKENS)
    assert text.table.to_pylist() == [{"row": 1, "source_id": "0", "tokens": ["a", "b"], "tags": ["O", "B-MISC"]}]


def test_tokens_without_tags_column_is_unlabelled(tmp_path):
    path = _jsonl(tmp_path / "u.jsonl", [{"tokens": ["a", "b"]}])
    text = read_text_table(path, Columns(tokens="tokens"))
    assert text.table.to_pylist() == [{"row": 1, "source_id": "0", "tokens": ["a", "b"], "tags": None}]


def test_bundled_samples_read_cleanly():
    for name, rows in (("ner.jsonl", 150), ("ner_dev.jsonl", 40)):
        text = read_text_table(SAMPLES / name, Columns(tokens="tokens", tags="tags", id="id"))
        assert text.rejects == [] and text.table.num_rows == rows
        assert {t[2:] for t in tag_names(text.table) if t != "O"} == {"PER", "ORG", "LOC", "MISC"}
        assert (SAMPLES / name).stat().st_size < 40_000
