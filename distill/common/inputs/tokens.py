"""Read a token-classification corpus (NER shape) sentence by sentence: jsonl / parquet / `datasets` with a
words column and a same-length tags column (strings or integer ids), or CoNLL text (word first, tag last, a
blank line ends a sentence, `-DOCSTART-` skipped). Tags: null for an unlabelled sentence."""

from __future__ import annotations

import dataclasses
from itertools import chain
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from distill.common.columns import Columns
from distill.errors import InputError
from distill.common.inputs.records import (
    Record, TextTable, arrow_records, claim_source_id, jsonl_records, read_checked, source_table,
)
from distill.common.inputs.source import FORMATS, SURROGATE, check_text_file, input_format, local_or_hub


def is_conll(path: str | Path, cols: Columns | None = None) -> bool:
    """CoNLL by suffix, or because the config says `format: conll`."""
    by_suffix = FORMATS.get(Path(path).suffix.lower()) == "conll" and not Path(path).is_dir()
    return (cols is not None and cols.format == "conll") or by_suffix


def is_token_task(path: str | Path, cols: Columns) -> bool:
    """A token task: a words column is configured, or the input is CoNLL (which implies one)."""
    return bool(cols.tokens) or is_conll(path, cols)


def conll_records(path: Path) -> Iterator[tuple[int, Record]]:
    """(sentence number, {"tokens", "tags"} or (field, reason)) for each sentence of a CoNLL file."""
    number, words, tags, problem = 0, [], [], None  # a sentence is open while it has words or a problem
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(chain(handle, [b"\n"]), start=1):  # a last blank line ends the last sentence
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                problem = problem or ("tokens", f"invalid UTF-8 at line {line_no}, byte {err.start}")
                continue
            parts = line.split()
            if not parts or parts[0] == "-DOCSTART-":
                if words or problem:
                    number += 1
                    yield number, problem or {"tokens": words, "tags": tags}
                    words, tags, problem = [], [], None
                continue
            if len(parts) < 2:
                reason = f"line {line_no} has no tag column (word and tag separated by whitespace)"
                problem = problem or ("tags", reason)
            else:
                words.append(parts[0])
                tags.append(parts[-1])


def _records(path: str | Path, cols: Columns) -> Iterator[tuple[int, Record]]:
    fmt = "conll" if is_conll(path, cols) else input_format(path)
    if fmt in ("conll", "jsonl"):
        check_text_file(path)
        return conll_records(path) if fmt == "conll" else jsonl_records(path)
    if fmt not in ("parquet", "datasets", "hub"):
        raise InputError(f"{path}: token tasks read jsonl, parquet, a datasets directory or CoNLL text, not {fmt}")
    wanted = [c for c in (cols.tokens, cols.tags, cols.id) if c]
    table = source_table(path, fmt, cols, wanted)
    for name in (cols.tokens, cols.tags):
        kind = table.schema.field(name).type if name and name in table.column_names else None
        if kind is not None and not (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_null(kind)):
            raise InputError(f"{path}: column {name!r} is {kind}, not a list (one word or tag per item)")
    return arrow_records(table, path, wanted)


class _TokenChecker:
    """Validates one sentence at a time; remembers the tag kind (str or int) and the ids seen."""

    def __init__(self, cols: Columns) -> None:
        self.cols, self.tag_kind, self.seen_ids = cols, None, set()

    def types(self) -> dict[str, pa.DataType]:
        tag = pa.int64() if self.tag_kind is int else pa.string()
        return {"row": pa.int64(), "source_id": pa.string(), "tokens": pa.list_(pa.string()), "tags": pa.list_(tag)}

    def check(self, number: int, record: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None, str | None]:
        cols = self.cols
        tokens, problem = self._words(record)
        if problem:
            return None, cols.tokens, problem
        tags, problem = self._tags(record, len(tokens)) if cols.tags else (None, None)
        if problem:
            return None, cols.tags, problem
        source_id, problem = claim_source_id(number, record, cols, self.seen_ids)
        row = {"row": number, "source_id": source_id, "tokens": tokens, "tags": tags}
        return (None, cols.id, problem) if problem else (row, None, None)

    def _words(self, record: dict[str, Any]) -> tuple[list[str] | None, str | None]:
        name, words = self.cols.tokens, record.get(self.cols.tokens)
        if not isinstance(words, list):
            kind = "null" if words is None else f"{type(words).__name__}, not a list of words"
            return None, f"missing field {name!r}" if name not in record else f"{name} is {kind}"
        if not words:
            return None, "empty sentence"
        for i, word in enumerate(words):
            if not isinstance(word, str):
                return None, f"{name}[{i}] is {type(word).__name__}, not a string"
            if SURROGATE.search(word):
                return None, f"invalid UTF-8 in {name}[{i}]"
            if not word.strip():
                return None, f"{name}[{i}] is empty"
        chars = sum(len(w) for w in words) + len(words) - 1
        if chars > self.cols.max_chars:
            return None, f"{name} has {chars} characters joined (max_chars={self.cols.max_chars})"
        return words, None

    def _tags(self, record: dict[str, Any], length: int) -> tuple[list | None, str | None]:
        name, tags = self.cols.tags, record.get(self.cols.tags)
        if name not in record:
            return None, f"missing field {name!r}"
        if not isinstance(tags, list):  # None: an unlabelled sentence, which the teacher labels
            return None, None if tags is None else f"{name} is {type(tags).__name__}, not a list of tags"
        if len(tags) != length:
            return None, f"{len(tags)} tags for {length} words"
        for i, tag in enumerate(tags):
            kind = str if isinstance(tag, str) else int if isinstance(tag, int) and not isinstance(tag, bool) else None
            if kind is None:
                return None, f"{name}[{i}] is {type(tag).__name__}, not a string or an integer id"
            self.tag_kind = self.tag_kind or kind
            if kind is not self.tag_kind:
                return None, f"{name}[{i}] is {kind.__name__}, but earlier tags are {self.tag_kind.__name__}"
            if kind is str and (not tag.strip() or SURROGATE.search(tag)):
                return None, f"{name}[{i}] is empty or invalid UTF-8"
        return tags, None


def read_token_table(path: str | Path, cols: Columns) -> TextTable:
    """Load and validate a token-task corpus; bad sentences become rejects, good ones a table."""
    path = local_or_hub(path, cols)
    if is_conll(path, cols):  # a CoNLL file implies tokens=`tokens`, tags=`tags` (the names its records carry)
        cols = dataclasses.replace(cols, tokens="tokens", tags="tags", id=None)
    return read_checked(path, _records(path, cols), _TokenChecker(cols))


def tag_names(table: pa.Table) -> list:
    """Sorted distinct tags of the input (the manifest's `tag_names`)."""
    return sorted(v for v in pc.unique(pc.list_flatten(table.column("tags"))).to_pylist() if v is not None)


class TaggedRows(NamedTuple):
    """Tagged sentences as lists, for the dev set and teacher fine-tuning of token tasks."""
    rows: list[int]  # 1-based record numbers
    words: list[list[str]]
    tags: list[list[Any] | None]  # None: an unlabelled sentence
    rejects: list[dict[str, Any]]


def read_tagged(path: str | Path, columns: Columns) -> TaggedRows:
    """Validated tagged sentences of `path`; bad rows become rejects, never an exception."""
    names = {"tokens": columns.tokens or "tokens", "tags": columns.tags or "tags"}
    text = read_token_table(path, dataclasses.replace(columns, **names, label=None))
    return TaggedRows(*(text.table.column(name).to_pylist() for name in ("row", "tokens", "tags")), text.rejects)
