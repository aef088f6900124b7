"""Read a labelled text corpus (csv, tsv, jsonl, parquet, a `datasets` folder or a hub name) row by row: a
problem with every row (a missing file or column, a binary file) is one `InputError`, a bad row a reject."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa

from distill.common.columns import Columns
from distill.errors import InputError
from distill.common.inputs.records import (
    Record, TextTable, arrow_records, claim_source_id, csv_records, jsonl_records, read_checked, source_table,
)
from distill.common.inputs.source import SURROGATE, check_text_file, input_format, local_or_hub
from distill.common.inputs.tokens import is_token_task, read_token_table

LABEL_TYPES = {"int": pa.int64(), "float": pa.float64(), "str": pa.string()}
_INT = re.compile(r"[+-]?\d+")


def read_text_table(path: str | os.PathLike, cols: Columns) -> TextTable:
    """Good rows as a table (row, source_id, text_a, text_b, label), bad rows as rejects; a token task (a
    `tokens` column, or CoNLL) is read by `read_token_table`."""
    path = local_or_hub(path, cols)
    if is_token_task(path, cols):
        return read_token_table(path, cols)
    fmt = input_format(path)
    return read_checked(path, _records(path, fmt, cols), _RowChecker(cols, from_text=fmt in ("csv", "tsv")))


def _records(path: str | Path, fmt: str, cols: Columns) -> Iterator[tuple[int, Record]]:
    wanted = [c for c in (cols.text_a, cols.text_b, cols.label, cols.id) if c]
    if fmt in ("csv", "tsv", "jsonl"):
        check_text_file(path)
    if fmt in ("csv", "tsv"):
        return csv_records(path, wanted, "," if fmt == "csv" else "\t")
    if fmt == "jsonl":
        return jsonl_records(path)
    return arrow_records(source_table(path, fmt, cols, wanted), path, wanted)


def _text_field(record: dict[str, Any], name: str, cols: Columns) -> tuple[str | None, str | None]:
    """(value, None) or (None, reason)."""
    value = record.get(name)
    if not isinstance(value, str):
        kind = "null" if value is None else f"{type(value).__name__}, not a string"
        return None, f"missing field {name!r}" if name not in record else f"{name} is {kind}"
    if SURROGATE.search(value):
        return None, f"invalid UTF-8 in {name}"
    if not value.strip():
        return None, f"empty {name}"
    if len(value) > cols.max_chars:
        return None, f"{name} has {len(value)} characters (max_chars={cols.max_chars})"
    return value, None


def _is_float(value: Any) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _infer_label_type(value: Any, from_text: bool) -> str:
    if not from_text:
        return "int" if isinstance(value, int) else "float" if isinstance(value, float) else "str"  # bool: int
    return "int" if _INT.fullmatch(value.strip()) else "float" if _is_float(value) else "str"


class _RowChecker:
    """Validates one record at a time; remembers the label type and the ids seen so far."""

    def __init__(self, cols: Columns, from_text: bool) -> None:
        self.cols, self.from_text, self.seen_ids = cols, from_text, set()
        self.label_kind = None if cols.label_type == "auto" else cols.label_type
        if self.label_kind is not None and self.label_kind not in LABEL_TYPES:
            raise InputError(f"unknown label_type {cols.label_type!r} (use auto, int, float or str)")

    def types(self) -> dict[str, pa.DataType]:
        return {"row": pa.int64(), "source_id": pa.string(), "text_a": pa.string(), "text_b": pa.string(),
                "label": LABEL_TYPES[self.label_kind or "int"]}

    def check(self, number: int, record: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None, str | None]:
        cols = self.cols
        row: dict[str, Any] = {"row": number, "text_b": None, "label": None}
        for key, name in (("text_a", cols.text_a), ("text_b", cols.text_b)):
            if name:
                row[key], problem = _text_field(record, name, cols)
                if problem:
                    return None, name, problem
        if cols.label:
            if cols.label not in record:
                return None, cols.label, f"missing field {cols.label!r}"
            row["label"], problem = self._label(record[cols.label])
            if problem:
                return None, cols.label, problem
        row["source_id"], problem = claim_source_id(number, record, cols, self.seen_ids)
        return (None, cols.id, problem) if problem else (row, None, None)

    def _label(self, value: Any) -> tuple[Any, str | None]:
        """(the label, None), (None, None) for none, or (None, reason); under `auto` the first label sets the type."""
        from_text = self.from_text
        if value is None or (from_text and not value.strip()):
            return None, None
        kind = self.label_kind = self.label_kind or _infer_label_type(value, from_text)
        if from_text and SURROGATE.search(value):
            return None, "invalid UTF-8 in label"
        number = not isinstance(value, bool) and isinstance(value, (int, float, str) if from_text else (int, float))
        whole = _INT.fullmatch(value.strip()) if from_text else number and (
            isinstance(value, int) or value.is_integer())
        if kind == "int" and whole:
            return int(value), None
        if kind == "float" and number and _is_float(value):
            return float(value), None
        if kind == "str" and isinstance(value, str):
            return value, None
        return None, f"label {value!r} is not of the label type {kind}"
