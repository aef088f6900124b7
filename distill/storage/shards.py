"""Shard files: one Arrow table per file, Parquet (`.parquet`) or Arrow IPC stream (`.arrow`); both open
without this project (pyarrow, `ray.data`, `datasets`, the latter memory-mapped). Also the row schema of
augmented shards (docs/design.md, "Formats"), shared by the writer and every reader."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from distill.storage.atomic import commit_file
from distill.storage.fingerprint import hash_file

SHARD_PREFIX = "part-"
SHARD_FORMATS = ("parquet", "arrow")
AUTO_SHARDS, MAX_AUTO_SHARD_ITEMS = 32, 1000  # `auto` shard size: about 32 shards (32 workers' work), <= 1000 items
_ROW_FIELDS = [
    pa.field("uid", pa.string(), nullable=False),  # "<source_id>-<aug_index>"
    pa.field("source_id", pa.string(), nullable=False),
    pa.field("aug_index", pa.int32(), nullable=False),  # 0 = the original example
]


def augmented_schema(label_type: pa.DataType) -> pa.Schema:
    return pa.schema([
        *_ROW_FIELDS,
        pa.field("text_a", pa.string(), nullable=False),
        pa.field("text_b", pa.string()),  # null for single-sentence tasks
        pa.field("label", label_type),  # gold label of the source example
        pa.field("rule", pa.dictionary(pa.int32(), pa.string())),  # original | mask | pos+ngram | ...
    ])


def token_augmented_schema(tag_type: pa.DataType) -> pa.Schema:
    """Token tasks (NER shape): words and their tags, one per word; `tag_type` is string or int64."""
    return pa.schema([
        *_ROW_FIELDS,
        pa.field("rule", pa.string()),  # original | mask | pos | mention | mask+mention | ...
        pa.field("tokens", pa.list_(pa.string()), nullable=False),
        pa.field("tags", pa.list_(tag_type)),  # same length as tokens; null for an unlabelled sentence
    ])


@dataclass
class ShardRecord:
    """What the manifest stores per shard; enough to verify it without opening it."""

    file: str
    rows: int
    bytes: int
    sha256: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ShardRecord":
        return cls(**data)


def shard_size(setting: int | str, items: int) -> int:
    """Items (rows, documents) per shard: `setting`, or for `auto` a function of the input alone, never of the
    worker count, so the output is the same on any cluster."""
    return setting if setting != "auto" else max(1, min(MAX_AUTO_SHARD_ITEMS, math.ceil(items / AUTO_SHARDS)))


def shard_name(index: int, fmt: str) -> str:
    if fmt not in SHARD_FORMATS:
        raise ValueError(f"unknown shard format {fmt!r}; choose one of {', '.join(SHARD_FORMATS)}")
    return f"{SHARD_PREFIX}{index:05d}.{fmt}"


def write_shard_batches(batches: Iterable[pa.RecordBatch | pa.Table], schema: pa.Schema,
                        directory: str | os.PathLike, name: str, extra: dict | None = None) -> ShardRecord:
    """Like `write_shard`, streaming: each batch is written as it comes, so a shard of large
    features (per-token hidden states) never has to fit in memory at once."""
    final, rows = Path(directory) / name, 0

    def write(tmp: Path) -> None:
        nonlocal rows
        with contextlib.ExitStack() as stack:
            if name.endswith(".parquet"):
                writer = stack.enter_context(pq.ParquetWriter(tmp, schema, compression="zstd"))
            else:
                writer = stack.enter_context(pa.ipc.new_stream(stack.enter_context(pa.OSFile(str(tmp), "wb")), schema))
            for batch in batches:
                writer.write(batch)
                rows += batch.num_rows

    commit_file(final, write)
    return ShardRecord(name, rows, final.stat().st_size, hash_file(final), dict(extra or {}))


def write_shard(table: pa.Table, directory: str | os.PathLike, name: str, extra: dict | None = None) -> ShardRecord:
    """Atomically write `table` as `<directory>/<name>` and return its record (sha256 of the bytes)."""
    return write_shard_batches([table], table.schema, directory, name, extra)


def read_shard(path: str | os.PathLike) -> pa.Table:
    path = Path(path)
    if path.suffix == ".parquet":
        return pq.read_table(path)
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_stream(source).read_all()


def read_shards(directory: str | os.PathLike) -> pa.Table:
    """All shards of a stage directory in shard order, as one table."""
    files = [f for f in sorted(Path(directory).glob(f"{SHARD_PREFIX}*")) if f.suffix in (".parquet", ".arrow")]
    if not files:
        raise FileNotFoundError(f"no {SHARD_PREFIX}* shards in {directory}")
    return pa.concat_tables([read_shard(f) for f in files])
