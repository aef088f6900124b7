"""Tagged sentences (a words column and a same-length tags column) as lists, for the dev set and
teacher fine-tuning of token tasks: `read_text_table`'s token reader (jsonl, parquet, datasets,
CoNLL, hub; rejects name file, row and field) with its table unpacked."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.common.text_inputs import Columns, read_text_table


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
    words, tags = token_columns(columns)
    text = read_text_table(path, dataclasses.replace(columns, tokens=words, tags=tags, label=None))
    table = text.table
    return TaggedRows(table.column("row").to_pylist(), table.column("tokens").to_pylist(),
                      table.column("tags").to_pylist(), text.rejects)
