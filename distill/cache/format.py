"""The cache format's version and file names: what a finished cache directory holds (docs/design.md,
"Teacher cache"). `FORMAT_VERSION` changes whenever a reader of the old version would misread the new
layout; readers refuse versions they do not know rather than guess."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distill.errors import UserError
from distill.storage.stage_dir import MANIFEST_NAME

# 1: before caches carried format_version, teacher files and a card; 2: before teacher heads
# (masked LM, encoder), top-k replacing full logits, per-masked columns and recomputed attention;
# 3: before token-classification teachers and the per-word layout (word_starts, per-word labels/logits).
FORMAT_VERSION = 4
READABLE_VERSIONS = (2, 3, 4)  # format 2 reads as a classifier cache whose top-k sits beside full logits
CARD_NAME = "README.md"
TEACHER_FILES_DIR = "teacher_files"
EMBEDDINGS_NAME = "input_embeddings.safetensors"
ATTENTION_QK_NAME = "attention_qk.safetensors"

__all__ = ["ATTENTION_QK_NAME", "CARD_NAME", "EMBEDDINGS_NAME", "FORMAT_VERSION", "MANIFEST_NAME", "TEACHER_FILES_DIR",
           "CacheError", "CacheFormatError", "check_format_version"]


class CacheError(UserError, FileNotFoundError):
    """Not a finished, readable teacher cache (one line, names the path)."""


class CacheFormatError(CacheError):
    """A cache written in a format this code does not read."""


def check_format_version(manifest: dict[str, Any], where: str | Path) -> int:
    version = manifest.get("format_version", 1)
    if version not in READABLE_VERSIONS:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        advice = ("it was written by a newer distill-data: upgrade this installation to read it" if newer else
                  "relabel it with this version (rerun augment_and_label.py; a new cache directory is made)")
        raise CacheFormatError(f"{where}: teacher cache format version {version!r}, this code reads version "
                               f"{FORMAT_VERSION} (and {', '.join(map(str, READABLE_VERSIONS[:-1]))}); {advice}")
    return version
