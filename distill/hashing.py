"""Content hashes (sha256 hex digests) of files, folders, models and JSON-able objects. A leaf module, so that
`distill.storage` and `distill.common`, which never import each other, can both use them."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20
# Files that define a Hugging Face model or tokenizer; README/.gitattributes etc. do not.
_MODEL_FILE_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model", ".pt")
_SKIPPED_MODEL_FILES = {"README.md", ".gitattributes"}


def hash_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_files(files: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(root)).encode())
        digest.update(hash_file(file).encode())
    return digest.hexdigest()


def hash_path(path: str | os.PathLike) -> str:
    """Hash a file, or every file below a directory (relative names included)."""
    path = Path(path)
    return hash_file(path) if path.is_file() else _hash_files(sorted(p for p in path.rglob("*") if p.is_file()), path)


def model_fingerprint(model_dir: str | os.PathLike) -> str:
    """Hash of the files that define a model: config, weights, tokenizer and vocab."""
    files = [file for file in sorted(Path(model_dir).iterdir())
             if file.is_file() and file.suffix in _MODEL_FILE_SUFFIXES and file.name not in _SKIPPED_MODEL_FILES]
    return _hash_files(files, Path(model_dir))


def hash_file_sampled(path: str | os.PathLike, sample_bytes: int = 4 * _CHUNK) -> str:
    """Size plus head and tail bytes: a cheap identity for multi-GB files such as GloVe (hashing all of
    glove.840B.300d.txt would cost more than most augmentation runs; a same-size edit inside is no real risk)."""
    size = os.path.getsize(path)
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(sample_bytes))
        if size > 2 * sample_bytes:
            handle.seek(size - sample_bytes)
            digest.update(handle.read(sample_bytes))
    return digest.hexdigest()


def fingerprint_json(obj: Any) -> str:
    """Stable hash of a JSON-able object (key order does not matter)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
