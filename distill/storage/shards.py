"""Shard files: one Arrow table per file, Parquet (`.parquet`) or Arrow IPC stream (`.arrow`).

Both formats open without this project: Parquet with pyarrow, `ray.data.read_parquet` and
`datasets.load_dataset("parquet")`; Arrow IPC streams with `pyarrow.ipc` and
`datasets.Dataset.from_file` (memory-mapped).
"""

from __future__ import annotations

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


def shard_name(index: int, fmt: str) -> str:
    if fmt not in SHARD_FORMATS:
        raise ValueError(f"unknown shard format {fmt!r}; choose one of {', '.join(SHARD_FORMATS)}")
    return f"{SHARD_PREFIX}{index:05d}.{fmt}"


def write_shard_batches(
    batches: Iterable[pa.RecordBatch | pa.Table],
    schema: pa.Schema,
    directory: str | os.PathLike,
    name: str,
    extra: dict | None = None,
) -> ShardRecord:
    """Like `write_shard`, streaming: each batch is written as it comes, so a shard of large
    features (per-token hidden states) never has to fit in memory at once."""
    final = Path(directory) / name
    state = {"rows": 0}

    def write(tmp: Path) -> None:
        parquet = name.endswith(".parquet")
        sink = None if parquet else pa.OSFile(str(tmp), "wb")
        writer = pq.ParquetWriter(tmp, schema, compression="zstd") if parquet else pa.ipc.new_stream(sink, schema)
        try:
            for batch in batches:
                writer.write(batch)
                state["rows"] += batch.num_rows
        finally:
            writer.close()
            if sink is not None:
                sink.close()
        state["sha256"] = hash_file(tmp)

    commit_file(final, write)
    return ShardRecord(name, state["rows"], final.stat().st_size, state["sha256"], dict(extra or {}))


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
    files = sorted(Path(directory).glob(f"{SHARD_PREFIX}*"))
    files = [f for f in files if f.suffix in (".parquet", ".arrow")]
    if not files:
        raise FileNotFoundError(f"no {SHARD_PREFIX}* shards in {directory}")
    return pa.concat_tables([read_shard(f) for f in files])
