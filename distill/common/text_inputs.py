"""Read a labelled text corpus (csv, tsv, jsonl, parquet, `datasets` on disk) and validate it row by row.

Bad rows never stop a run: each is returned as a reject naming file, row and field
(docs/design.md, "No silent loss"). Configuration mistakes that affect every row (missing file,
a column absent from the header or schema) are raised as one clear error instead.

Row numbers are 1-based data-record numbers (the header is not counted), so "row 3" is the
third example; `source_id` defaults to the 0-based record index, so dropping a bad row never
renumbers the others.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa

LABEL_TYPES = {"int": pa.int64(), "float": pa.float64(), "str": pa.string()}
_SURROGATE = re.compile("[\udc80-\udcff]")
_INT = re.compile(r"[+-]?\d+")


class InputError(ValueError):
    """A problem with the input as a whole (one line, names the file)."""


@dataclass
class Columns:
    """Which input columns hold what. `text_b=None` means a single-sentence task."""

    text_a: str = "text_a"
    text_b: str | None = None
    label: str | None = "label"
    id: str | None = None
    label_type: str = "auto"  # auto | int | float | str
    max_chars: int = 10_000  # longer texts are rejected: they are almost always broken rows
    split: str = "train"  # for a saved datasets.DatasetDict


@dataclass
class TextTable:
    table: pa.Table  # row, source_id, text_a, text_b, label
    rejects: list[dict[str, Any]] = field(default_factory=list)
    rows_read: int = 0


def input_format(path: Path) -> str:
    if path.is_dir():
        return "datasets"
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".parquet"):
        return suffix[1:]
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    raise InputError(f"{path}: unsupported input format {suffix!r} (use csv, tsv, jsonl, parquet or a datasets directory)")


def _csv_records(path: Path, cols: Columns, delimiter: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL  # GLUE tsv files are unquoted
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter, quoting=quoting)
        header = next(reader, None)
        if header is None:
            raise InputError(f"{path}: file is empty")
        for wanted in _wanted_columns(cols):
            if wanted not in header:
                raise InputError(f"{path}: no column {wanted!r} in header (columns: {', '.join(header)})")
        for number, cells in enumerate(reader, start=1):
            if not cells:
                yield number, "empty line"
                continue
            record = {name: cells[i] for i, name in enumerate(header) if i < len(cells)}
            yield number, record


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                yield number, f"invalid UTF-8 at byte {err.start}"
                continue
            if not line.strip():
                yield number, "empty line"
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                yield number, f"invalid JSON ({err.msg})"
                continue
            yield number, record if isinstance(record, dict) else "not a JSON object"


def _arrow_records(table: pa.Table, path: Path, cols: Columns) -> Iterator[tuple[int, dict[str, Any] | str]]:
    for wanted in _wanted_columns(cols):
        if wanted not in table.column_names:
            raise InputError(f"{path}: no column {wanted!r} (columns: {', '.join(table.column_names)})")
    names = [c for c in _wanted_columns(cols)]
    columns = {name: table.column(name).to_pylist() for name in names}
    for i in range(table.num_rows):
        yield i + 1, {name: columns[name][i] for name in names}


def _wanted_columns(cols: Columns) -> list[str]:
    return [c for c in (cols.text_a, cols.text_b, cols.label, cols.id) if c]


def _records(path: Path, cols: Columns) -> Iterator[tuple[int, dict[str, Any] | str]]:
    fmt = input_format(path)
    if fmt in ("csv", "tsv"):
        return _csv_records(path, cols, "," if fmt == "csv" else "\t")
    if fmt == "jsonl":
        return _jsonl_records(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return _arrow_records(pq.read_table(path), path, cols)
    import datasets

    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        if cols.split not in loaded:
            raise InputError(f"{path}: no split {cols.split!r} (splits: {', '.join(loaded)})")
        loaded = loaded[cols.split]
    return _arrow_records(loaded.data.table, path, cols)


def _text_field(record: dict[str, Any], name: str, cols: Columns) -> tuple[str | None, str | None]:
    """(value, None) or (None, reason)."""
    if name not in record:
        return None, f"missing field {name!r}"
    value = record[name]
    if value is None:
        return None, f"{name} is null"
    if not isinstance(value, str):
        return None, f"{name} is {type(value).__name__}, not a string"
    if _SURROGATE.search(value):
        return None, f"invalid UTF-8 in {name}"
    if not value.strip():
        return None, f"empty {name}"
    if len(value) > cols.max_chars:
        return None, f"{name} has {len(value)} characters (max_chars={cols.max_chars})"
    return value, None


def _infer_label_type(value: Any, from_text: bool) -> str:
    if from_text:
        if _INT.fullmatch(value.strip()):
            return "int"
        try:
            float(value)
            return "float"
        except ValueError:
            return "str"
    if isinstance(value, bool) or isinstance(value, int):
        return "int"
    return "float" if isinstance(value, float) else "str"


def _parse_label(value: Any, kind: str, from_text: bool) -> tuple[Any, str | None]:
    if value is None or (from_text and value.strip() == ""):
        return None, None
    if from_text and isinstance(value, str) and _SURROGATE.search(value):
        return None, "invalid UTF-8 in label"
    try:
        if kind == "int":
            if from_text:
                if not _INT.fullmatch(value.strip()):
                    raise ValueError
                return int(value), None
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    return int(value), None
                raise ValueError
            return value, None
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError
            if not from_text and isinstance(value, str):
                raise ValueError
            return float(value), None
        if not isinstance(value, str):
            raise ValueError
        return value, None
    except ValueError:
        return None, f"label {value!r} is not of the label type {kind}"


class _RowChecker:
    """Validates one record at a time; remembers the label type and the ids seen so far."""

    def __init__(self, cols: Columns, from_text: bool) -> None:
        self.cols = cols
        self.from_text = from_text
        self.label_kind = None if cols.label_type == "auto" else cols.label_type
        if self.label_kind is not None and self.label_kind not in LABEL_TYPES:
            raise InputError(f"unknown label_type {cols.label_type!r} (use auto, int, float or str)")
        self.seen_ids: set[str] = set()

    def check(self, number: int, record: dict[str, Any] | str) -> tuple[dict[str, Any] | None, str | None, str | None]:
        """(row, None, None) for a good record, else (None, field, reason)."""
        cols = self.cols
        if isinstance(record, str):
            return None, None, record
        row: dict[str, Any] = {"row": number, "text_b": None, "label": None}
        for key, name in (("text_a", cols.text_a), ("text_b", cols.text_b)):
            if name:
                row[key], problem = _text_field(record, name, cols)
                if problem:
                    return None, name, problem
        if cols.label:
            if cols.label not in record:
                return None, cols.label, f"missing field {cols.label!r}"
            raw = record[cols.label]
            if self.label_kind is None and raw is not None and not (self.from_text and str(raw).strip() == ""):
                self.label_kind = _infer_label_type(raw, self.from_text)
            row["label"], problem = _parse_label(raw, self.label_kind or "str", self.from_text)
            if problem:
                return None, cols.label, problem
        row["source_id"] = str(number - 1)
        if cols.id:
            value = record.get(cols.id)
            if value is None or (isinstance(value, str) and (not value.strip() or _SURROGATE.search(value))):
                return None, cols.id, "missing or invalid id"
            row["source_id"] = str(value)
        if row["source_id"] in self.seen_ids:
            return None, cols.id, f"duplicate id {row['source_id']!r}"
        self.seen_ids.add(row["source_id"])
        return row, None, None


def read_text_table(path: str | os.PathLike, cols: Columns) -> TextTable:
    """Load and validate an input corpus; bad rows become rejects, good rows a table."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: input file not found")
    checker = _RowChecker(cols, from_text=input_format(path) in ("csv", "tsv"))
    columns: dict[str, list] = {name: [] for name in ("row", "source_id", "text_a", "text_b", "label")}
    rejects: list[dict[str, Any]] = []
    read = 0
    for number, record in _records(path, cols):
        read += 1
        row, field_name, reason = checker.check(number, record)
        if row is None:
            rejects.append({"file": str(path), "row": number, "field": field_name, "reason": reason})
            continue
        for name, values in columns.items():
            values.append(row[name])
    types = {"row": pa.int64(), "source_id": pa.string(), "text_a": pa.string(), "text_b": pa.string()}
    types["label"] = LABEL_TYPES[checker.label_kind or "int"]
    table = pa.table({name: pa.array(values, types[name]) for name, values in columns.items()})
    return TextTable(table=table, rejects=rejects, rows_read=read)
