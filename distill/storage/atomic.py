"""Atomic file commits: write to a temporary name in the same directory, fsync, rename, so a reader sees
nothing or a complete file, even if the writer is killed half-way (docs/design.md, "Atomic commits")."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

TEMP_MARKER = ".tmp-"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_file(final: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` to produce the file, then fsync it and rename it to `final`."""
    final = Path(final)
    tmp = final.with_name(f"{final.name}{TEMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}")  # swept if left behind
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(final.parent)


def write_bytes_atomic(final: Path, data: bytes) -> None:
    commit_file(final, lambda tmp: tmp.write_bytes(data))


def write_json_atomic(final: Path, obj: Any) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_bytes_atomic(final, text.encode("utf-8"))


def sweep_temp_files(directory: Path) -> list[Path]:
    """Delete temporaries left by a killed writer. Only call while holding the directory lock."""
    removed = []
    for path in Path(directory).rglob(f"*{TEMP_MARKER}*"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
