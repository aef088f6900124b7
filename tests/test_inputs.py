"""Input validation: every bad row becomes a reject naming file, row and field."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill.common.columns import Columns
from distill.common.inputs.text import read_text_table
from distill.errors import InputError


def test_csv_rejects_empty_text_invalid_utf8_and_short_rows(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(
        b"sentence,label\n"
        b"a fine film,1\n"
        b"   ,0\n"  # row 2: empty text
        b"caf\xe9 au lait,1\n"  # row 3: latin-1 byte, not UTF-8
        b"no label here\n"  # row 4: missing column
        b"\n"  # row 5: empty line
        b"a dull film,zero\n"  # row 6: label not an int
        b"\"quoted, with comma\",0\n"
    )
    result = read_text_table(path, Columns(text_a="sentence"))
    assert result.table.column("text_a").to_pylist() == ["a fine film", "quoted, with comma"]
    assert result.table.column("source_id").to_pylist() == ["0", "6"]
    assert result.table.column("label").to_pylist() == [1, 0]
    got = [(r["row"], r["field"], r["reason"]) for r in result.rejects]
    assert got == [
        (2, "sentence", "empty sentence"),
        (3, "sentence", "invalid UTF-8 in sentence"),
        (4, "label", "missing field 'label'"),
        (5, None, "empty line"),
        (6, "label", "label 'zero' is not of the label type int"),
    ]
    assert all(r["file"] == str(path) for r in result.rejects)
    assert result.rows_read == 7


def test_jsonl_rejects_non_strings_bad_json_and_bad_utf8(tmp_path):
    path = tmp_path / "pairs.jsonl"
    lines = [
        json.dumps({"s1": "a man sings", "s2": "someone sings", "label": "entailment"}).encode(),
        json.dumps({"s1": 42, "s2": "x", "label": "neutral"}).encode(),
        b'{"s1": "broken json"',
        json.dumps({"s1": "only one side", "label": "neutral"}).encode(),
        b'{"s1": "bad \xff byte", "s2": "y", "label": "neutral"}',
        json.dumps({"s1": "two", "s2": "sides", "label": 3}).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = read_text_table(path, Columns(text_a="s1", text_b="s2"))
    assert result.table.num_rows == 1
    assert result.table.schema.field("label").type == pa.string()
    got = [(r["row"], r["field"], r["reason"].split(" (")[0]) for r in result.rejects]
    assert got == [
        (2, "s1", "s1 is int, not a string"),
        (3, None, "invalid JSON"),
        (4, "s2", "missing field 's2'"),
        (5, None, "invalid UTF-8 at byte 12"),
        (6, "label", "label 3 is not of the label type str"),
    ]


def test_parquet_non_string_cells_and_duplicate_ids(tmp_path):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "a"], "text": ["one", None, "three"], "label": [0.5, 1.0, 2.0]}), path)
    result = read_text_table(path, Columns(text_a="text", id="id"))
    assert result.table.column("source_id").to_pylist() == ["a"]
    assert result.table.schema.field("label").type == pa.float64()
    assert [(r["row"], r["reason"]) for r in result.rejects] == [(2, "text is null"), (3, "duplicate id 'a'")]


def test_whole_file_problems_are_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_text_table(tmp_path / "missing.csv", Columns())
    path = tmp_path / "x.csv"
    path.write_text("sentence,label\nhello,1\n")
    with pytest.raises(InputError, match=r"no column 'text_a' in header \(columns: sentence, label\)"):
        read_text_table(path, Columns())
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match=r"broken.parquet: not a readable parquet file \("):
        read_text_table(tmp_path / "broken.parquet", Columns())


def test_tsv_is_read_without_quote_processing(tmp_path):
    path = tmp_path / "glue.tsv"
    path.write_text('sentence\tlabel\nthe " quoted " film\t1\nplain\t0\n', encoding="utf-8")
    result = read_text_table(path, Columns(text_a="sentence"))
    assert result.table.column("text_a").to_pylist() == ['the " quoted " film', "plain"]


def test_datasets_directory_input(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"text_a": ["x y", "z"], "label": [0, 1]}).save_to_disk(tmp_path / "ds")
    result = read_text_table(tmp_path / "ds", Columns())
    assert result.table.column("text_a").to_pylist() == ["x y", "z"]
