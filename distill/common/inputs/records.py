"""The records of a labelled input (csv, tsv, jsonl, Arrow) checked into a table for the text and token readers:
a bad row is a reject naming file, row (1-based, no header) and field, never a stop (docs/design.md)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import pyarrow as pa

from distill.common.columns import Columns
from distill.common.inputs.source import SURROGATE, dataset_table, load_dataset, parquet_table, require_columns
from distill.errors import InputError

# A parsed record: its fields, a reject reason (str), or a reject naming its field (field, reason).
Record = dict[str, Any] | str | tuple[str | None, str]


class TextTable(NamedTuple):
    table: pa.Table  # row, source_id and the task's columns (text_a, text_b, label; or tokens, tags)
    rejects: list[dict[str, Any]]  # {file, row, field, reason}
    rows_read: int


def jsonl_records(path: Path) -> Iterator[tuple[int, Record]]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
                record = json.loads(line) if line.strip() else "empty line"
            except UnicodeDecodeError as err:
                record = f"invalid UTF-8 at byte {err.start}"
            except json.JSONDecodeError as err:
                record = f"invalid JSON ({err.msg})"
            else:  # a blank line's reason, a JSON object, or any other JSON value
                record = record if isinstance(record, dict) or not line.strip() else "not a JSON object"
            yield number, record


def source_table(path: str | Path, fmt: str, cols: Columns, names: list[str]) -> pa.Table:
    """The `names` columns of a parquet file, or a dataset's split `cols.split`, as a table."""
    if fmt == "parquet":
        return parquet_table(Path(path), path, names)
    return dataset_table(load_dataset(path, cols.split))


def arrow_records(table: pa.Table, path: str | os.PathLike, names: list[str],
                  hint: str = "") -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based row, {name: value}) of an Arrow table; a missing column is one `InputError`."""
    require_columns(table.column_names, names, path, hint)
    yield from enumerate(table.select(names).to_pylist(), start=1)


def claim_source_id(number: int, record: dict[str, Any], cols: Columns,
                    seen: set[str]) -> tuple[str | None, str | None]:
    """(the `id` column's value, else the 0-based record index, None), or (None, reason) for a missing,
    invalid or repeated id (added to `seen`): a dropped row never renumbers others."""
    source_id = str(number - 1)
    if cols.id:
        value = record.get(cols.id)
        if value is None or (isinstance(value, str) and (not value.strip() or SURROGATE.search(value))):
            return None, "missing or invalid id"
        source_id = str(value)
    if source_id in seen:
        return None, f"duplicate id {source_id!r}"
    seen.add(source_id)
    return source_id, None


def read_checked(path: str | os.PathLike, records: Iterator[tuple[int, Record]], checker) -> TextTable:
    """Each record through `checker.check(number, record)` ((row, None, None) or (None, field, reason)):
    the good rows as a table of `checker.types()`, the rejects, and the records read."""
    rows: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    read = 0
    for read, (number, record) in enumerate(records, start=1):
        if isinstance(record, dict):
            row, field_name, reason = checker.check(number, record)
        else:  # a reason, or (field, reason): a reject the parser already named
            row, (field_name, reason) = None, ((None, record) if isinstance(record, str) else record)
        if row is None:
            rejects.append({"file": str(path), "row": number, "field": field_name, "reason": reason})
        else:
            rows.append(row)
    table = pa.table({name: pa.array([row[name] for row in rows], kind) for name, kind in checker.types().items()})
    return TextTable(table=table, rejects=rejects, rows_read=read)


class _Lines:
    """A file's lines for `csv.reader`; `at` counts those handed out, and setting it back hands them out again."""

    def __init__(self, lines: list[str]) -> None:
        self.lines, self.at = lines, 0

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        if self.at == len(self.lines):
            raise StopIteration
        self.at += 1
        return self.lines[self.at - 1]


def _parses_strictly(lines: list[str], delimiter: str) -> bool:
    try:
        list(csv.reader(iter(lines), delimiter=delimiter, quoting=csv.QUOTE_MINIMAL, strict=True))
    except csv.Error:
        return False
    return True


def _runaway_quote(cells: list[str], header: list[str], lines: list[str], delimiter: str) -> str | None:
    """None for a valid multi-line record, else the stray quote that swallowed the lines after it ran "to_eof"
    (the lines parse once a quote is appended) or was "closed" by a later quote (not strict CSV, or a field
    count other than the header's). One closed by a lone `"` giving the header's field count looks valid."""
    if _parses_strictly(lines, delimiter):
        return "closed" if len(cells) != len(header) else None
    return "to_eof" if _parses_strictly(lines[:-1] + [lines[-1] + '"'], delimiter) else "closed"


def csv_records(path: Path, wanted: list[str], delimiter: str) -> Iterator[tuple[int, Record]]:
    """Records of a csv file (QUOTE_MINIMAL) or a tsv file (a tab delimiter, no quoting). A runaway quote's
    record is a reject for the field where it opened, yielded before the rows it swallowed, parsed again."""
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # any length (`max_chars` rejects); a C long
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
        lines = _Lines(handle.readlines())
    reader = csv.reader(lines, delimiter=delimiter, quoting=quoting)
    header = _header(path, next(reader, None), wanted)
    held: list[list] = []  # [number, record] held back until every open swallow knows its last row
    swallows: list[dict[str, Any]] = []  # open: {"slot", "row", "field", "last_line", "kind"}
    number, start = 0, lines.at + 1  # start: the record's first line
    for number, cells in enumerate(reader, start=1):
        for swallow in [s for s in swallows if s["last_line"] < start]:
            _close(held, swallow, number - 1)
            swallows.remove(swallow)
        multi_line = lines.at > start and quoting != csv.QUOTE_NONE
        kind = _runaway_quote(cells, header, lines.lines[start - 1:lines.at], delimiter) if multi_line else None
        if kind is not None:
            at = next((i for i, cell in enumerate(cells) if "\n" in cell or "\r" in cell), len(cells) - 1)
            swallows.append({"slot": len(held), "row": number, "field": header[at] if at < len(header) else None,
                             "last_line": lines.at, "kind": kind})
            lines.at = start  # the swallowed lines are read again, as rows of their own
        record = {name: cells[i] for i, name in enumerate(header) if i < len(cells)} if cells else "empty line"
        held.append([number, "unterminated quote" if kind else record])  # a swallow's reject: see _close
        if not swallows:
            yield from (tuple(item) for item in held)
            held.clear()
        start = lines.at + 1
    for swallow in swallows:
        _close(held, swallow, number)
    yield from (tuple(item) for item in held)


def _header(path: Path, header: list[str] | None, wanted: list[str]) -> list[str]:
    if header is None:
        raise InputError(f"{path}: file is empty")
    shown = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in ", ".join(header))  # one printable line
    for name in wanted:
        if name not in header:
            raise InputError(f"{path}: no column {name!r} in header (columns: "
                             f"{shown if len(shown) <= 200 else shown[:200] + '...'})")
    return header


def _close(held: list[list], swallow: dict[str, Any], last_row: int) -> None:
    """Replace a swallowing record by its reject, now that the last row it swallowed is known."""
    first = swallow["row"]
    again = f"row {last_row} was" if last_row == first + 1 else f"rows {first + 1}-{last_row} were"
    reach = " to the end of the file" if swallow["kind"] == "to_eof" else ""
    reason = (f"unterminated quote starting at row {first} swallowed rows {first}-{last_row}{reach}; "
              f"{again} read on their own")
    held[swallow["slot"]][1] = (swallow["field"], reason)
