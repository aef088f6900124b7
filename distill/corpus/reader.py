"""Read an unlabelled corpus into documents: lines or blank-line separated paragraphs of a txt file, or
`text_column` of jsonl, parquet, a `save_to_disk` folder or a hub dataset. Unlike labelled inputs, a bad row
stops the run in one `InputError` naming file, row and field (it usually means a wrong column or a broken
export). Whitespace-only documents are skipped."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import Any

from distill.common.inputs.records import arrow_records
from distill.common.inputs.source import dataset_fingerprint, dataset_table, load_dataset, parquet_table, source_format
from distill.corpus.config import CorpusConfig
from distill.errors import InputError
from distill.storage.fingerprint import hash_path

CORPUS_FORMATS = ("txt", "jsonl", "parquet", "datasets", "hub")
SET_TEXT_COLUMN = "; set text_column"


def read_documents(source: str | os.PathLike, config: CorpusConfig) -> list[str]:
    """The documents of `source`, in input order, whitespace-only ones skipped."""
    return load_source(source, config)[0]


def load_source(source: str | os.PathLike, config: CorpusConfig) -> tuple[list[str], dict[str, str]]:
    """The documents and the manifest's `input`: path, format and content hash (a file's, folder's or hub dataset's)."""
    fmt, path, field = source_format(source), Path(source), config.text_column
    if fmt not in ("hub", "datasets") and not path.exists():
        raise InputError(f"{source}: input file not found")
    if fmt not in CORPUS_FORMATS:
        raise InputError(f"{source}: unsupported input format {path.suffix.lower()!r} "
                         "(use txt, jsonl, parquet, a datasets folder or a hub dataset name)")
    if fmt == "hub":
        dataset = load_dataset(f"{source}:{config.hub_config}" if config.hub_config else source, config.split)
        documents = _keep(_column_values(dataset_table(dataset), str(source), field))
        fingerprint = dataset_fingerprint(dataset, str(source), config.hub_config, config.split)
        return documents, {"path": str(source), "format": fmt, "fingerprint": fingerprint}
    if fmt == "txt":
        documents = _txt_documents(path, config.documents)
    elif fmt == "jsonl":
        documents = _jsonl_documents(path, field)
    elif fmt == "parquet":
        documents = _column_values(parquet_table(path, path.name, [field], SET_TEXT_COLUMN), path.name, field)
    else:
        documents = _column_values(dataset_table(load_dataset(path, config.split)), path.name, field)
    return _keep(documents), {"path": os.path.abspath(path), "format": fmt, "fingerprint": hash_path(path)}


def _keep(documents: Iterator[str]) -> list[str]:
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
        for number, raw in enumerate(chain(handle, [b"\n"]), start=1):  # a last blank line ends the last paragraph
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


def _column_values(table, where: str, field: str) -> Iterator[str]:
    for number, record in arrow_records(table, where, [field], SET_TEXT_COLUMN):
        yield _text(record[field], f"{where}: row {number}", field)
