"""Read an unlabelled corpus into a list of documents, refusing bad input in one line.

Formats: txt (one document per line, or documents separated by blank lines), jsonl (field
`text_column`), parquet (column `text_column`), a `datasets.save_to_disk` folder (a Dataset, or a
DatasetDict and `split`), or a hub dataset name (`datasets.load_dataset(name, hub_config, split)`).

Unlike the labelled inputs of the augment stage (`distill.common.text_inputs`, where a bad row
becomes a reject), a bad row here stops the run with an `InputError` naming file, row and field:
an unlabelled corpus has no per-row label worth salvaging, and a malformed row usually means a
wrong column or a broken export that should be fixed rather than silently thinned out.
Whitespace-only documents (and blank jsonl lines) are skipped: they hold nothing to learn from.
Documents are numbered by their position among the kept documents, in input order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill.common.hub_inputs import HubInputError, arrow_table, hub_name, load_dataset_input
from distill.common.text_inputs import InputError
from distill.corpus.config import CorpusConfig
from distill.storage.fingerprint import fingerprint_json, hash_path

TEXT_SUFFIXES = (".txt", ".text")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
PARQUET_SUFFIXES = (".parquet",)


@dataclass(frozen=True)
class SourceInfo:
    """What the manifest says about the input: where it came from and its content hash."""

    path: str
    format: str
    fingerprint: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "format": self.format, "fingerprint": self.fingerprint}


def source_format(source: str | os.PathLike) -> str:
    """txt, jsonl, parquet, datasets (a local folder) or hub; a missing local file is an InputError."""
    path = Path(source)
    if path.is_dir():
        return "datasets"
    suffix = path.suffix.lower()
    if path.exists():
        if suffix in TEXT_SUFFIXES:
            return "txt"
        if suffix in JSONL_SUFFIXES:
            return "jsonl"
        if suffix in PARQUET_SUFFIXES:
            return "parquet"
        raise InputError(f"{source}: unsupported input format {suffix!r} "
                         "(use txt, jsonl, parquet, a datasets folder or a hub dataset name)")
    if hub_name(source) is None:  # path-like (a file suffix, ./, /, a/b/c): a local file that is missing
        raise InputError(f"{source}: input file not found")
    return "hub"


def read_documents(source: str | os.PathLike, config: CorpusConfig) -> list[str]:
    """The documents of `source`, in input order, whitespace-only ones skipped."""
    return load_source(source, config)[0]


def load_source(source: str | os.PathLike, config: CorpusConfig) -> tuple[list[str], SourceInfo]:
    """The documents and the input's identity (file or folder hash; for the hub the dataset's own
    fingerprint with its name, config and split)."""
    fmt = source_format(source)
    if fmt == "hub":
        dataset = _load_dataset(str(source), config.split, config.hub_config)
        documents = _keep(_column_values(arrow_table(dataset), str(source), config.text_column))
        identity = {"name": str(source), "config": config.hub_config, "split": config.split,
                    "dataset_fingerprint": getattr(dataset, "_fingerprint", None)}
        return documents, SourceInfo(str(source), fmt, fingerprint_json(identity))
    path = Path(source)
    if fmt == "txt":
        documents = _keep(_txt_documents(path, config.documents))
    elif fmt == "jsonl":
        documents = _keep(_jsonl_documents(path, config.text_column))
    elif fmt == "parquet":
        documents = _keep(_parquet_documents(path, config.text_column))
    else:
        documents = _keep(_column_values(arrow_table(_load_dataset(str(path), config.split)), path.name,
                                             config.text_column))
    return documents, SourceInfo(str(path), fmt, hash_path(path))


def _keep(documents: Iterable[str]) -> list[str]:
    return [doc for doc in documents if doc.strip()]


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{where}: invalid UTF-8 at byte {err.start} (the corpus must be UTF-8 text)") from None


def _txt_documents(path: Path, mode: str) -> Iterator[str]:
    """`line`: each line a document. `blank_line`: runs of non-blank lines joined with newlines."""
    paragraph: list[str] = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = _decode(raw, f"{path.name}: line {number}")
            if "\0" in line:
                raise InputError(f"{path.name}: line {number}: NUL byte (not a text file?)")
            line = line.rstrip("\r\n")
            if mode == "line":
                yield line
            elif line.strip():
                paragraph.append(line)
            elif paragraph:
                yield "\n".join(paragraph)
                paragraph = []
    if paragraph:
        yield "\n".join(paragraph)


def _jsonl_documents(path: Path, field: str) -> Iterator[str]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            where = f"{path.name}: row {number}"
            line = _decode(raw, where)
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(f"{where}: invalid JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(record, dict):
                raise InputError(f"{where}: not a JSON object ({type(record).__name__})")
            if field not in record:
                shown = ", ".join(map(repr, list(record)[:10]))
                raise InputError(f"{where}: no field {field!r} (fields: {shown}); set text_column")
            yield _text(record[field], where, field)


def _text(value: Any, where: str, field: str) -> str:
    if isinstance(value, str):
        return value
    kind = "null" if value is None else type(value).__name__
    raise InputError(f"{where}: field {field!r} is {kind}, not a string")


def _column_values(table, name: str, field: str) -> Iterator[str]:
    if field not in table.column_names:
        raise InputError(f"{name}: no column {field!r} (columns: {', '.join(table.column_names)}); set text_column")
    for number, value in enumerate(table.column(field).to_pylist(), start=1):
        yield _text(value, f"{name}: row {number}", field)


def _parquet_documents(path: Path, field: str) -> Iterator[str]:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a broken file
        raise InputError(f"{path.name}: not a readable parquet file ({' '.join(str(err).split())})") from None
    if field not in schema.names:
        raise InputError(f"{path.name}: no column {field!r} (columns: {', '.join(schema.names)}); set text_column")
    yield from _column_values(pq.read_table(path, columns=[field]), path.name, field)


def _load_dataset(source: str, split: str, hub_config: str | None = None):
    """A hub dataset or a local dataset folder, through the shared loader (`distill.common.hub_inputs`)."""
    try:
        return load_dataset_input(f"{source}:{hub_config}" if hub_config else source, split)
    except HubInputError as err:
        raise InputError(str(err)) from None
