"""Content fingerprints: what a stage's output depends on, hashed, so reruns can be skipped.

Follows Hugging Face `datasets`: an output is keyed by (input fingerprint, stage, stage
version, resolved config, model identity). Hashes are sha256 hex digests.
"""

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


def hash_file_sampled(path: str | os.PathLike, sample_bytes: int = 4 * _CHUNK) -> str:
    """Size plus head and tail bytes: cheap identity for multi-GB files such as GloVe.

    Hashing all of glove.840B.300d.txt (5.6 GB) on every run would cost more than most
    augmentation runs; a same-size edit in the middle of such a file is not a real risk.
    """
    size = os.path.getsize(path)
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(sample_bytes))
        if size > 2 * sample_bytes:
            handle.seek(size - sample_bytes)
            digest.update(handle.read(sample_bytes))
    return digest.hexdigest()


def hash_path(path: str | os.PathLike) -> str:
    """Hash a file, or every file below a directory (relative names included)."""
    path = Path(path)
    if path.is_file():
        return hash_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(hash_file(file).encode())
    return digest.hexdigest()


def fingerprint_json(obj: Any) -> str:
    """Stable hash of a JSON-able object (key order does not matter)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def model_fingerprint(model_dir: str | os.PathLike) -> str:
    """Hash of the files that define a model: config, weights, tokenizer and vocab."""
    model_dir = Path(model_dir)
    digest = hashlib.sha256()
    for file in sorted(model_dir.iterdir()):
        if file.is_file() and file.suffix in _MODEL_FILE_SUFFIXES and file.name not in _SKIPPED_MODEL_FILES:
            digest.update(file.name.encode())
            digest.update(hash_file(file).encode())
    return digest.hexdigest()
