"""Read a labelled text corpus (csv, tsv, jsonl, parquet, `datasets` on disk) and validate it row by row.

Bad rows never stop a run: each is returned as a reject naming file, row and field
(docs/design.md, "No silent loss"). Configuration mistakes that affect every row (missing file,
a column absent from the header or schema) are raised as one clear error instead.

Row numbers are 1-based data-record numbers (the header is not counted), so "row 3" is the
third example; `source_id` defaults to the 0-based record index, so dropping a bad row never
renumbers the others.

Before a csv, tsv or jsonl file is parsed its first bytes are checked: a binary file (an image,
a gzip archive, UTF-16) is refused as a whole, without echoing its bytes (`_check_text_file`).
CSV fields may be of any length (the csv module's 128 KiB field limit is lifted; `max_chars`
rejects long texts), and a stray opening quote that swallows the following lines is reported
and those lines are read again (`_runaway_quote`).
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

import pyarrow as pa

from distill.common.config_io import NonEmptyStr, PositiveInt
from distill.common.hub_inputs import HubInputError, arrow_table, hub_fingerprint, hub_name, load_dataset_input
from distill.storage.fingerprint import hash_path

LABEL_TYPES = {"int": pa.int64(), "float": pa.float64(), "str": pa.string()}
_SURROGATE = re.compile("[\udc80-\udcff]")
_INT = re.compile(r"[+-]?\d+")
_SNIFF_BYTES = 8192  # how much of a text file is checked for binary content
_TEXT_CONTROLS = frozenset("\t\n\r\f\v")  # the only C0 control characters text files hold
# A parsed record: its fields, a reject reason (str), or a reject naming its field (field, reason).
_Record = dict[str, Any] | str | tuple[str | None, str]


class InputError(ValueError):
    """A problem with the input as a whole (one line, names the file)."""


@dataclass
class Columns:
    """Which input columns hold what. `text_b=None` means a single-sentence task."""

    text_a: NonEmptyStr = "text_a"
    text_b: str | None = None  # None or "": no second sentence
    label: str | None = "label"  # None or "": unlabelled
    id: str | None = None
    label_type: Literal["auto", "int", "float", "str"] = "auto"  # auto: the type the values have
    max_chars: PositiveInt = 10_000  # longer texts are rejected: they are almost always broken rows
    split: NonEmptyStr = "train"  # of a hub dataset or a saved datasets.DatasetDict
    # Token tasks (NER shape, distill/common/token_inputs.py): a list-of-words column makes one;
    # text_a/text_b/label are then unused. tags = the same-length tag column (None: unlabelled).
    tokens: str | None = None
    tags: str | None = None
    format: Literal["auto", "conll"] = "auto"  # conll: CoNLL text whatever the suffix


@dataclass
class TextTable:
    table: pa.Table  # row, source_id, text_a, text_b, label
    rejects: list[dict[str, Any]] = field(default_factory=list)
    rows_read: int = 0


def input_format(path: str | os.PathLike, cols: Columns | None = None) -> str:
    """csv, tsv, jsonl, parquet, conll, datasets (a local dataset folder) or hub (a hub dataset name)."""
    if hub_name(path) is not None:
        return "hub"
    path = Path(path)
    if cols is not None and cols.format == "conll":
        return "conll"
    if path.is_dir():
        return "datasets"
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".parquet"):
        return suffix[1:]
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix in (".conll", ".conll03", ".iob", ".bio"):
        return "conll"
    raise InputError(f"{path}: unsupported input format {suffix!r} (use csv, tsv, jsonl, parquet, CoNLL text, "
                     "a datasets directory or a hub dataset name)")


def input_identity(source: str | os.PathLike, split: str = "train", cols: Columns | None = None) -> dict[str, str]:
    """{path, format, fingerprint} of an input for a manifest: a hash of a local file or folder, or
    a hub dataset's name, configuration, split and `datasets` fingerprint."""
    fmt = input_format(source, cols)
    name = hub_name(source)
    if name is not None:
        try:
            return {"path": str(name), "format": fmt, "fingerprint": hub_fingerprint(name, split)}
        except HubInputError as err:
            raise InputError(str(err)) from None
    return {"path": str(source), "format": fmt, "fingerprint": hash_path(source)}


def _printable(text: str, limit: int = 200) -> str:
    """`text` for a one-line message: control characters and undecodable bytes escaped, cut at `limit`."""
    shown = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return shown if len(shown) <= limit else shown[:limit] + "..."


def _check_text_file(path: Path) -> None:
    """Refuse a file that is not text, in one line that does not echo its bytes.

    The first `_SNIFF_BYTES` bytes are looked at. The file is binary if they hold a NUL byte (no
    UTF-8 text does; images, archives and UTF-16 text do), or if at least a quarter of them are
    bytes that cannot be UTF-8 text: invalid UTF-8, or C0 control characters other than tab, line
    feed, carriage return, form feed and vertical tab. A UTF-8 file with a few bad bytes (say
    a latin-1 "café") is text: its bad rows become rejects.
    """
    with open(path, "rb") as handle:
        sample = handle.read(_SNIFF_BYTES)
    offset = sample.find(b"\0")
    if offset < 0:
        text = sample.decode("utf-8", errors="surrogateescape")
        bad = [i for i, ch in enumerate(text) if _SURROGATE.match(ch) or (ch < " " and ch not in _TEXT_CONTROLS)]
        if sample and len(bad) * 4 >= len(sample):
            offset = len(text[: bad[0]].encode("utf-8", errors="surrogateescape"))
    if offset >= 0:
        raise InputError(
            f"{path}: not a text file (binary content at byte {offset}); csv, tsv and jsonl inputs must be "
            "UTF-8 text (not compressed, not UTF-16)"
        )


def _lift_csv_field_limit() -> None:
    """Let csv fields be of any length: the csv module stops at 128 KiB by default, and
    `max_chars` is what rejects overlong texts. (The limit is process-wide; it is only raised.)"""
    limit = sys.maxsize
    while csv.field_size_limit() < limit:
        try:
            csv.field_size_limit(limit)
        except OverflowError:  # the limit is a C long: 32 bits on some platforms
            limit //= 2


class _Lines:
    """A text file's physical lines for `csv.reader`, numbered from 1, with push-back.

    `csv.reader` asks for one line at a time and only as many as the record it is building
    needs, so the lines taken since `begin()` are exactly the current record's lines."""

    def __init__(self, handle) -> None:
        self._handle = handle
        self._read = 0  # lines read from the file so far
        self._back: list[tuple[int, str]] = []  # pushed-back (number, line), the next one last
        self.number = 0  # the number of the last line handed out
        self.taken: list[str] = []

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        if self._back:
            self.number, line = self._back.pop()
        else:
            line = self._handle.readline()
            if not line:
                raise StopIteration
            self._read += 1
            self.number = self._read
        self.taken.append(line)
        return line

    def begin(self) -> int:
        """Start a record; returns the number of its first line."""
        self.taken = []
        return self._back[-1][0] if self._back else self._read + 1

    def push_back(self, first: int, lines: list[str]) -> None:
        """Hand `lines` (numbered from `first`) out again before reading on."""
        self._back.extend(reversed(list(enumerate(lines, start=first))))


def _runaway_quote(cells: list[str], header: list[str], lines: list[str], delimiter: str) -> str | None:
    """Whether a record read from several physical lines is a stray quote that swallowed the lines
    after it: None for a legitimate record, else "to_eof" or "closed" (closed by a later quote).

    Embedded line breaks are valid CSV, so a multi-line record alone is not suspect. It is a
    runaway quote when (a) its field count differs from the header's, or (b) it is not strict CSV:
    the quote that ends the quoted field is followed by something other than a delimiter or a line
    end (the swallow was ended by the next row's opening or inner quote), or the file ends inside
    the quotes. A multi-line record with the header's field count whose quotes close properly is
    kept as one record; so is a stray quote closed by a later lone `"` just before a delimiter or
    line end that happens to give the header's field count (no parser can tell it from a real
    multi-line field; `max_chars` still applies).
    """
    try:
        list(csv.reader(iter(lines), delimiter=delimiter, quoting=csv.QUOTE_MINIMAL, strict=True))
    except csv.Error:
        return "to_eof" if _ends_inside_quotes(lines, delimiter) else "closed"
    return "closed" if len(cells) != len(header) else None


def _ends_inside_quotes(lines: list[str], delimiter: str) -> bool:
    """Whether strict parsing of `lines` fails only because the data ends inside a quoted field:
    the same lines parse strictly once a closing quote is appended. (Then the non-strict reader
    was inside the quotes too, so the record ran to the end of the file.)"""
    try:
        closed = lines[:-1] + [lines[-1] + '"']
        list(csv.reader(iter(closed), delimiter=delimiter, quoting=csv.QUOTE_MINIMAL, strict=True))
    except csv.Error:
        return False
    return True


def _csv_records(path: Path, cols: Columns, delimiter: str) -> Iterator[tuple[int, _Record]]:
    """Records of a csv (QUOTE_MINIMAL) or tsv (no quote processing) file.

    A runaway quote (`_runaway_quote`) does not take the rows after it along: the record's first
    line becomes a reject for the field where the quote opened ("unterminated quote starting at
    row 3 swallowed rows 3-5; rows 4-5 were read on their own"), and the lines after it are
    parsed again as rows of their own, numbered as if the quote had been closed. The reject is
    yielded before those rows; rows R+1..S are the rows that start inside the swallowed lines.
    """
    _lift_csv_field_limit()
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL  # GLUE tsv files are unquoted
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
        lines = _Lines(handle)
        reader = csv.reader(lines, delimiter=delimiter, quoting=quoting)
        header = next(reader, None)
        if header is None:
            raise InputError(f"{path}: file is empty")
        for wanted in _wanted_columns(cols):
            if wanted not in header:
                raise InputError(f"{path}: no column {wanted!r} in header (columns: {_printable(', '.join(header))})")
        held: list[list] = []  # [number, record] held back until every open swallow knows its last row
        swallows: list[dict[str, Any]] = []  # open: {"slot", "row", "field", "last_line", "kind"}
        number = 0

        def close(swallow: dict[str, Any], last_row: int) -> None:
            first = swallow["row"]
            again = f"row {last_row} was" if last_row == first + 1 else f"rows {first + 1}-{last_row} were"
            reach = " to the end of the file" if swallow["kind"] == "to_eof" else ""
            reason = (f"unterminated quote starting at row {first} swallowed rows {first}-{last_row}{reach}; "
                      f"{again} read on their own")
            held[swallow["slot"]][1] = (swallow["field"], reason)

        while True:
            start = lines.begin()
            try:
                cells = next(reader)
            except StopIteration:
                break
            number += 1
            for swallow in [s for s in swallows if s["last_line"] < start]:
                close(swallow, number - 1)
                swallows.remove(swallow)
            record: _Record | None = None
            if lines.number > start and quoting != csv.QUOTE_NONE:
                kind = _runaway_quote(cells, header, lines.taken, delimiter)
                if kind is not None:
                    at = next((i for i, cell in enumerate(cells) if "\n" in cell or "\r" in cell), len(cells) - 1)
                    field_name = header[at] if at < len(header) else None
                    swallows.append(
                        {"slot": len(held), "row": number, "field": field_name, "last_line": lines.number, "kind": kind}
                    )
                    lines.push_back(start + 1, lines.taken[1:])
                    record = "unterminated quote"  # replaced by close()
            if record is None:
                if not cells:
                    record = "empty line"
                else:
                    record = {name: cells[i] for i, name in enumerate(header) if i < len(cells)}
            held.append([number, record])
            if not swallows:
                yield from (tuple(item) for item in held)
                held.clear()
        for swallow in swallows:
            close(swallow, number)
        yield from (tuple(item) for item in held)


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


def arrow_records(table: pa.Table, path, names: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based row, {name: value}) for the `names` columns of an Arrow table; a missing column is
    one `InputError` naming the file and the columns it has."""
    for wanted in names:
        if wanted not in table.column_names:
            raise InputError(f"{path}: no column {wanted!r} (columns: {', '.join(table.column_names)})")
    columns = {name: table.column(name).to_pylist() for name in names}
    for i in range(table.num_rows):
        yield i + 1, {name: columns[name][i] for name in names}


def _arrow_records(table: pa.Table, path: Path, cols: Columns) -> Iterator[tuple[int, dict[str, Any] | str]]:
    return arrow_records(table, path, _wanted_columns(cols))


def _wanted_columns(cols: Columns) -> list[str]:
    return [c for c in (cols.text_a, cols.text_b, cols.label, cols.id) if c]


def _records(path: Path, cols: Columns) -> Iterator[tuple[int, _Record]]:
    fmt = input_format(path)
    if fmt in ("csv", "tsv", "jsonl"):
        _check_text_file(path)
    if fmt in ("csv", "tsv"):
        return _csv_records(path, cols, "," if fmt == "csv" else "\t")
    if fmt == "jsonl":
        return _jsonl_records(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return _arrow_records(pq.read_table(path), path, cols)
    return _arrow_records(dataset_table(path, cols), path, cols)


def dataset_table(source: str | os.PathLike, cols: Columns) -> pa.Table:
    """The rows of a hub dataset or local dataset folder (split `cols.split`) as an Arrow table."""
    try:
        return arrow_table(load_dataset_input(source, cols.split))
    except HubInputError as err:
        raise InputError(str(err)) from None


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

    def check(self, number: int, record: _Record) -> tuple[dict[str, Any] | None, str | None, str | None]:
        """(row, None, None) for a good record, else (None, field, reason)."""
        cols = self.cols
        if isinstance(record, str):
            return None, None, record
        if isinstance(record, tuple):  # (field, reason): a reject the parser already named
            return None, record[0], record[1]
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
        row["source_id"], problem = claim_source_id(number, record, cols, self.seen_ids)
        if problem:
            return None, cols.id, problem
        return row, None, None


def claim_source_id(number: int, record: dict[str, Any], cols: Columns, seen: set[str]) -> tuple[str | None, str | None]:
    """(the row's source id, None): the `id` column's value, else the 0-based record index; or
    (None, reason) for a missing, invalid or repeated id. Ids taken are added to `seen`."""
    source_id = str(number - 1)
    if cols.id:
        value = record.get(cols.id)
        if value is None or (isinstance(value, str) and (not value.strip() or _SURROGATE.search(value))):
            return None, "missing or invalid id"
        source_id = str(value)
    if source_id in seen:
        return None, f"duplicate id {source_id!r}"
    seen.add(source_id)
    return source_id, None


def read_text_table(path: str | os.PathLike, cols: Columns) -> TextTable:
    """Load and validate an input corpus (a file, a dataset folder or a hub dataset name); bad rows
    become rejects, good rows a table. A token task (a `tokens` column, or CoNLL input) is read by
    `token_inputs.read_token_table`."""
    from distill.common.token_inputs import is_token_task, read_token_table

    path = str(path) if input_format(path, cols) == "hub" else Path(path)  # a hub name is no path
    if isinstance(path, Path) and not path.exists():
        raise InputError(f"{path}: input file not found")
    if is_token_task(path, cols):
        return read_token_table(path, cols)
    checker = _RowChecker(cols, from_text=input_format(path) in ("csv", "tsv"))
    columns, rejects, read = checked_rows(path, _records(path, cols), checker,
                                          ("row", "source_id", "text_a", "text_b", "label"))
    types = {"row": pa.int64(), "source_id": pa.string(), "text_a": pa.string(), "text_b": pa.string()}
    types["label"] = LABEL_TYPES[checker.label_kind or "int"]
    table = pa.table({name: pa.array(values, types[name]) for name, values in columns.items()})
    return TextTable(table=table, rejects=rejects, rows_read=read)


def checked_rows(path, records, checker, names) -> tuple[dict[str, list], list[dict[str, Any]], int]:
    """Run each record through `checker.check(number, record)`: the good rows' `names` columns,
    the rejects (file, row, field, reason), and how many records were read."""
    columns: dict[str, list] = {name: [] for name in names}
    rejects: list[dict[str, Any]] = []
    read = 0
    for number, record in records:
        read += 1
        row, field_name, reason = checker.check(number, record)
        if row is None:
            rejects.append({"file": str(path), "row": number, "field": field_name, "reason": reason})
            continue
        for name, values in columns.items():
            values.append(row[name])
    return columns, rejects, read
