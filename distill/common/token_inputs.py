"""Read a token-classification corpus (NER shape) and validate it sentence by sentence.

Inputs: jsonl / parquet / `datasets` with a list-of-strings words column
(`Columns.tokens`) and a same-length tags column (`Columns.tags`, strings or integer ids), or
CoNLL text (one word per line, word = first column, tag = last, a blank line ends a sentence,
`-DOCSTART-` lines skipped). As for text tasks a bad sentence becomes one reject naming file, row
and field, and a problem with the whole file is one `InputError`. A row is a sentence: CoNLL rows
are numbered from 1 in file order, and their rejects name the line the sentence starts on.

The table: row (int64), source_id (string, as for text tasks), tokens list<string>, tags
list<string> or list<int64> (null for an unlabelled row).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa

from distill.common.text_inputs import (
    _SURROGATE, Columns, InputError, TextTable, _check_text_file, _jsonl_records, arrow_records, checked_rows,
    claim_source_id, dataset_table, input_format,
)

CONLL_SUFFIXES = (".conll", ".conll03", ".iob", ".bio")
DOCSTART = "-DOCSTART-"
TOKEN_COLUMNS = ("row", "source_id", "tokens", "tags")


def is_conll(path: str | Path, cols: Columns | None = None) -> bool:
    """CoNLL by suffix, or because the config says `format: conll`."""
    path = Path(path)
    return (cols is not None and cols.format == "conll") or (not path.is_dir() and path.suffix.lower() in CONLL_SUFFIXES)


def is_token_task(path: str | Path, cols: Columns) -> bool:
    """A token task: a words column is configured, or the input is CoNLL (which implies one)."""
    return bool(cols.tokens) or is_conll(path, cols)


def conll_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | tuple[str | None, str]]]:
    """(sentence number, {"tokens", "tags"} or (field, reason)) for each sentence of a CoNLL file."""
    number, start, words, tags, problem = 0, None, [], [], None
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                start = start or line_no
                problem = problem or ("tokens", f"invalid UTF-8 at line {line_no}, byte {err.start}")
                continue
            parts = line.split()
            if not parts or parts[0] == DOCSTART:
                if start is not None:
                    number += 1
                    yield number, problem or {"tokens": words, "tags": tags}
                    start, words, tags, problem = None, [], [], None
                continue
            start = start or line_no
            if len(parts) < 2:
                problem = problem or ("tags", f"line {line_no} has no tag column (word and tag separated by whitespace)")
                continue
            words.append(parts[0])
            tags.append(parts[-1])
    if start is not None:
        yield number + 1, problem or {"tokens": words, "tags": tags}


def _arrow_token_records(table: pa.Table, path: Path, cols: Columns) -> Iterator[tuple[int, dict[str, Any]]]:
    records = arrow_records(table, path, _wanted_token_columns(cols))
    for wanted in (cols.tokens, cols.tags):
        kind = table.schema.field(wanted).type if wanted and wanted in table.column_names else None
        if kind is not None and not (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_null(kind)):
            raise InputError(f"{path}: column {wanted!r} is {kind}, not a list (one word or tag per item)")
    return records


def _wanted_token_columns(cols: Columns) -> list[str]:
    return [c for c in (cols.tokens, cols.tags, cols.id) if c]


def _token_records(path: Path, cols: Columns):
    if is_conll(path, cols):
        _check_text_file(path)
        return conll_records(path)
    fmt = input_format(path)
    if fmt == "jsonl":
        _check_text_file(path)
        return _jsonl_records(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return _arrow_token_records(pq.read_table(path), path, cols)
    if fmt in ("datasets", "hub"):
        return _arrow_token_records(dataset_table(path, cols), path, cols)
    raise InputError(f"{path}: token tasks read jsonl, parquet, a datasets directory or CoNLL text, not {fmt}")


class _TokenChecker:
    """Validates one sentence at a time; remembers the tag kind (str or int) and the ids seen."""

    def __init__(self, cols: Columns) -> None:
        self.cols = cols
        self.tag_kind: type | None = None
        self.seen_ids: set[str] = set()

    def check(self, number: int, record) -> tuple[dict[str, Any] | None, str | None, str | None]:
        cols = self.cols
        if isinstance(record, str):
            return None, None, record
        if isinstance(record, tuple):
            return None, record[0], record[1]
        tokens, problem = self._words(record)
        if problem:
            return None, cols.tokens, problem
        tags = None
        if cols.tags:
            tags, problem = self._tags(record, len(tokens))
            if problem:
                return None, cols.tags, problem
        source_id, problem = claim_source_id(number, record, cols, self.seen_ids)
        if problem:
            return None, cols.id, problem
        return {"row": number, "source_id": source_id, "tokens": tokens, "tags": tags}, None, None

    def _words(self, record: dict[str, Any]) -> tuple[list[str] | None, str | None]:
        name = self.cols.tokens
        if name not in record:
            return None, f"missing field {name!r}"
        words = record[name]
        if words is None:
            return None, f"{name} is null"
        if not isinstance(words, list):
            return None, f"{name} is {type(words).__name__}, not a list of words"
        if not words:
            return None, "empty sentence"
        for i, word in enumerate(words):
            if not isinstance(word, str):
                return None, f"{name}[{i}] is {type(word).__name__}, not a string"
            if _SURROGATE.search(word):
                return None, f"invalid UTF-8 in {name}[{i}]"
            if not word.strip():
                return None, f"{name}[{i}] is empty"
        chars = sum(len(w) for w in words) + len(words) - 1
        if chars > self.cols.max_chars:
            return None, f"{name} has {chars} characters joined (max_chars={self.cols.max_chars})"
        return words, None

    def _tags(self, record: dict[str, Any], length: int) -> tuple[list | None, str | None]:
        name = self.cols.tags
        if name not in record:
            return None, f"missing field {name!r}"
        tags = record[name]
        if tags is None:
            return None, None  # an unlabelled sentence: the teacher labels it
        if not isinstance(tags, list):
            return None, f"{name} is {type(tags).__name__}, not a list of tags"
        if len(tags) != length:
            return None, f"{len(tags)} tags for {length} words"
        for i, tag in enumerate(tags):
            kind = str if isinstance(tag, str) else int if isinstance(tag, int) and not isinstance(tag, bool) else None
            if kind is None:
                return None, f"{name}[{i}] is {type(tag).__name__}, not a string or an integer id"
            if self.tag_kind is None:
                self.tag_kind = kind
            if kind is not self.tag_kind:
                return None, f"{name}[{i}] is {kind.__name__}, but earlier tags are {self.tag_kind.__name__}"
            if kind is str and (not tag.strip() or _SURROGATE.search(tag)):
                return None, f"{name}[{i}] is empty or invalid UTF-8"
        return tags, None


def conll_columns(cols: Columns) -> Columns:
    """A CoNLL file implies tokens=`tokens`, tags=`tags` (the names its records carry)."""
    import dataclasses

    return dataclasses.replace(cols, tokens="tokens", tags="tags", id=None)


def read_token_table(path: str | Path, cols: Columns) -> TextTable:
    """Load and validate a token-task corpus; bad sentences become rejects, good ones a table."""
    path = str(path) if input_format(path, cols) == "hub" else Path(path)  # a hub name is no path
    if isinstance(path, Path) and not path.exists():
        raise InputError(f"{path}: input file not found")
    if is_conll(path, cols):
        cols = conll_columns(cols)
    checker = _TokenChecker(cols)
    columns, rejects, read = checked_rows(path, _token_records(path, cols), checker, TOKEN_COLUMNS)
    tag_type = pa.int64() if checker.tag_kind is int else pa.string()
    types = {"row": pa.int64(), "source_id": pa.string(), "tokens": pa.list_(pa.string()), "tags": pa.list_(tag_type)}
    table = pa.table({name: pa.array(values, types[name]) for name, values in columns.items()})
    return TextTable(table=table, rejects=rejects, rows_read=read)


def tag_names(table: pa.Table) -> list:
    """Sorted distinct tags of the input (the manifest's `tag_names`)."""
    import pyarrow.compute as pc

    return sorted(v for v in pc.unique(pc.list_flatten(table.column("tags"))).to_pylist() if v is not None)
