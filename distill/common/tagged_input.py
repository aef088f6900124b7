"""Tagged sentences (a words column and a same-length tags column) for the dev set and teacher
fine-tuning of token tasks.

Stopgap until `read_text_table` reads token tasks itself (the augment side's reader, shared
contract: `Columns.tokens` / `Columns.tags`): this reads jsonl only, with the same row numbering and
reject reasons (file, row, field) as the text reader. `read_tagged` uses `read_text_table` as
soon as it returns a `tokens` column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.common.text_inputs import Columns, InputError, input_format, read_text_table


@dataclass
class TaggedRows:
    rows: list[int]  # 1-based record numbers
    words: list[list[str]]
    tags: list[list[Any] | None]  # None: an unlabelled sentence
    rejects: list[dict[str, Any]] = field(default_factory=list)


def token_columns(columns: Columns) -> tuple[str, str]:
    """The words and tags column names of a token task (`tokens` / `tags` unless given)."""
    return columns.tokens or "tokens", columns.tags or "tags"


def read_tagged(path: str | Path, columns: Columns) -> TaggedRows:
    """Validated tagged sentences of `path`; bad rows become rejects, never an exception."""
    path = Path(path)
    words_col, tags_col = token_columns(columns)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if input_format(path) != "jsonl":
        table = read_text_table(path, Columns(tokens=words_col, tags=tags_col, label=None))
        if "tokens" not in table.table.column_names:
            raise InputError(f"{path}: token tasks read jsonl here (a words list and a tags list per line)")
        return TaggedRows(table.table.column("row").to_pylist(), table.table.column("tokens").to_pylist(),
                          table.table.column("tags").to_pylist() if "tags" in table.table.column_names else None,
                          table.rejects)
    out = TaggedRows([], [], [])
    with path.open(encoding="utf-8") as lines:
        for row, line in enumerate((x for x in lines if x.strip()), start=1):
            problem, record = _check(line, words_col, tags_col)
            if problem:
                out.rejects.append({"file": str(path), "row": row, "field": problem[0], "reason": problem[1]})
                continue
            out.rows.append(row)
            out.words.append(record[0])
            out.tags.append(record[1])
    if not out.rows and not out.rejects:
        raise InputError(f"{path}: no rows")
    return out


def _check(line: str, words_col: str, tags_col: str):
    """((field, reason), None) for a bad line, else (None, (words, tags))."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        return (None, f"malformed JSON ({err.msg})"), None
    if not isinstance(record, dict):
        return (None, "a JSON line must be an object"), None
    words, tags = record.get(words_col), record.get(tags_col)
    if not isinstance(words, list) or not words:
        return (words_col, "missing or empty list of words"), None
    if not all(isinstance(w, str) and w.strip() for w in words):
        return (words_col, "a word is not a non-empty string"), None
    if tags is not None:
        if not isinstance(tags, list) or not all(isinstance(t, (str, int)) and not isinstance(t, bool) for t in tags):
            return (tags_col, "tags must be a list of strings or integers"), None
        if len(tags) != len(words):
            return (tags_col, f"{len(words)} words but {len(tags)} tags"), None
    return None, (words, tags)
