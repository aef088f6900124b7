"""Read a labelled text corpus (csv, tsv, jsonl, parquet, `datasets` on disk) and validate it row by row.

Bad rows never stop a run: each is returned as a reject naming file, row and field
(DESIGN.md "No silent loss"). Configuration mistakes that affect every row (missing file,
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


def read_text_table(path: str | os.PathLike, cols: Columns) -> TextTable:
    """Load and validate an input corpus; bad rows become rejects, good rows a table."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: input file not found")
    from_text = input_format(path) in ("csv", "tsv")
    label_kind = None if cols.label_type == "auto" else cols.label_type
    if label_kind is not None and label_kind not in LABEL_TYPES:
        raise InputError(f"unknown label_type {cols.label_type!r} (use auto, int, float or str)")
    rows, ids, texts_a, texts_b, labels, rejects = [], [], [], [], [], []
    seen_ids: set[str] = set()
    read = 0

    def reject(number: int, fld: str | None, reason: str) -> None:
        rejects.append({"file": str(path), "row": number, "field": fld, "reason": reason})

    for number, record in _records(path, cols):
        read += 1
        if isinstance(record, str):
            reject(number, None, record)
            continue
        text_a, problem = _text_field(record, cols.text_a, cols)
        if problem:
            reject(number, cols.text_a, problem)
            continue
        text_b = None
        if cols.text_b:
            text_b, problem = _text_field(record, cols.text_b, cols)
            if problem:
                reject(number, cols.text_b, problem)
                continue
        label = None
        if cols.label:
            if cols.label not in record:
                reject(number, cols.label, f"missing field {cols.label!r}")
                continue
            raw = record[cols.label]
            if label_kind is None and raw is not None and not (from_text and str(raw).strip() == ""):
                label_kind = _infer_label_type(raw, from_text)
            label, problem = _parse_label(raw, label_kind or "str", from_text)
            if problem:
                reject(number, cols.label, problem)
                continue
        source_id = str(number - 1)
        if cols.id:
            value = record.get(cols.id)
            if value is None or (isinstance(value, str) and (not value.strip() or _SURROGATE.search(value))):
                reject(number, cols.id, "missing or invalid id")
                continue
            source_id = str(value)
        if source_id in seen_ids:
            reject(number, cols.id, f"duplicate id {source_id!r}")
            continue
        seen_ids.add(source_id)
        rows.append(number)
        ids.append(source_id)
        texts_a.append(text_a)
        texts_b.append(text_b)
        labels.append(label)
    table = pa.table(
        {
            "row": pa.array(rows, pa.int64()),
            "source_id": pa.array(ids, pa.string()),
            "text_a": pa.array(texts_a, pa.string()),
            "text_b": pa.array(texts_b, pa.string()),
            "label": pa.array(labels, LABEL_TYPES[label_kind or "int"]),
        }
    )
    return TextTable(table=table, rejects=rejects, rows_read=read)
