"""A stage's output directory: shards, per-shard commit records (`_commits/<shard>.json`) and the manifest,
written last (docs/design.md, "Atomic commits"). pyarrow datasets ignore `_` files: readers see only `part-*`."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from distill.errors import UserError
from distill.storage.atomic import sweep_temp_files, write_json_atomic
from distill.storage.fingerprint import hash_file
from distill.storage.lock import LOCK_NAME
from distill.storage.shards import SHARD_PREFIX, ShardRecord, write_shard_batches

MANIFEST_NAME, PROGRESS_NAME, COMMITS_DIR = "_manifest.json", "_progress.json", "_commits"
log = logging.getLogger(__name__)


class StageMismatchError(UserError, RuntimeError):
    pass


class DamagedFileError(UserError, ValueError):
    """A manifest, progress file or commit record that does not parse (a truncated copy, a full disk)."""


def read_record(path: Path) -> dict[str, Any] | None:
    """A JSON object a stage wrote, None when absent; `DamagedFileError` naming the file when it does not parse."""
    if not path.exists():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DamagedFileError(f"{path} is damaged ({err})") from None
    if not isinstance(value, dict):
        raise DamagedFileError(f"{path} is damaged (not a JSON object)")
    return value


def verify_record(directory: Path, record: ShardRecord, sha256: bool = True) -> str | None:
    """Why `directory/record.file` does not match its record (size, then sha256), or None if it does."""
    path = Path(directory) / record.file
    if not path.exists():
        return "missing"
    if path.stat().st_size != record.bytes:
        return f"size {path.stat().st_size} != recorded {record.bytes}"
    if sha256 and hash_file(path) != record.sha256:
        return "sha256 mismatch"
    return None


@dataclass
class StageDir:
    """Shard bookkeeping for one stage output directory. Picklable: workers commit through it."""

    directory: Path
    stage: str
    fingerprint: str
    named_by_fingerprint: bool = False  # a cache: its directory says whose shards it holds
    damaged: bool = False  # a manifest or progress file did not parse

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            return read_record(path)
        except DamagedFileError as err:
            log.warning("%s", err)  # `begin` redoes the stage from its commits, or asks for --overwrite
            self.damaged = True
            return None

    def manifest(self) -> dict[str, Any] | None:
        return self._read(self.directory / MANIFEST_NAME)

    def _record_path(self, name: str) -> Path:
        return self.directory / COMMITS_DIR / f"{name}.json"

    def valid_record(self, name: str) -> ShardRecord | None:
        """The commit record of shard `name` if the shard on disk matches it."""
        path = self._record_path(name)
        try:
            record = ShardRecord.from_dict(data) if (data := read_record(path)) else None
        except (DamagedFileError, TypeError):  # a torn record: the shard is written again
            record = None
        problem = record and verify_record(self.directory, record)
        if problem:
            log.warning("shard %s is invalid (%s); it will be rewritten", self.directory / name, problem)
            return None
        return record

    def is_complete(self) -> bool:
        manifest = self.manifest()
        if not manifest or manifest.get("fingerprint") != self.fingerprint:
            return False
        for shard in manifest["shards"]:
            problem = verify_record(self.directory, ShardRecord.from_dict(shard))
            if problem:
                log.warning("shard %s of a finished run is invalid (%s)", shard["file"], problem)
                return False
        return True

    def begin(self, overwrite: bool = False) -> None:
        """Claim the directory for this fingerprint; refuse to mix with another run's output."""
        self.directory.mkdir(parents=True, exist_ok=True)
        markers = [self._read(self.directory / name) for name in (MANIFEST_NAME, PROGRESS_NAME)]
        found = next((marker.get("fingerprint") for marker in markers if marker), None)
        if self.damaged and not self.named_by_fingerprint and not overwrite:
            raise DamagedFileError(f"{self.directory}: its manifest or progress file is damaged, so its shards cannot be "
                                   f"told to be this run's; pass --overwrite to redo the {self.stage} stage")
        if (found is not None and found != self.fingerprint) or (self.damaged and not self.named_by_fingerprint):
            if not overwrite:
                raise StageMismatchError(f"{self.directory} holds {self.stage} output of a different input/config "
                                         f"(fingerprint {found[:12]} != {self.fingerprint[:12]}); "
                                         "choose another output directory or pass --overwrite")
            log.warning("overwriting %s (fingerprint %s)", self.directory, (found or "unreadable")[:12])
            self._clear()
        (self.directory / MANIFEST_NAME).unlink(missing_ok=True)
        sweep_temp_files(self.directory)
        (self.directory / COMMITS_DIR).mkdir(exist_ok=True)
        write_json_atomic(self.directory / PROGRESS_NAME, {"stage": self.stage, "fingerprint": self.fingerprint})

    def _clear(self) -> None:
        for path in self.directory.iterdir():
            if path.is_dir():
                shutil.rmtree(path)
            elif path.name != LOCK_NAME:
                path.unlink()

    def commit_shard(self, table: pa.Table, name: str, extra: dict | None = None) -> ShardRecord:
        return self.commit_shard_batches([table], table.schema, name, extra)

    def commit_shard_batches(self, batches: Iterable[pa.RecordBatch | pa.Table], schema: pa.Schema, name: str,
                             extra: dict | None = None) -> ShardRecord:
        """Stream `batches` into shard `name`, then write its commit record (the shard counts only then)."""
        record = write_shard_batches(batches, schema, self.directory, name, extra)
        write_json_atomic(self._record_path(name), record.to_dict())
        return record

    def finalize(self, records: list[ShardRecord], body: dict[str, Any]) -> dict[str, Any]:
        """Write the manifest (last, atomically) listing `records` (already verified by the caller)."""
        manifest = {"stage": self.stage, "fingerprint": self.fingerprint, **body,
                    "shards": [record.to_dict() for record in records], "complete": True}
        names = {record.file for record in records}
        for temp in sweep_temp_files(self.directory):  # left by a worker killed mid-write (Ray retried it)
            log.info("removed temporary file %s of an interrupted write", temp)
        for stray in self.directory.glob(f"{SHARD_PREFIX}*"):
            if stray.name not in names:
                log.warning("removing stray shard %s not in this run's plan", stray)
                stray.unlink()
        write_json_atomic(self.directory / MANIFEST_NAME, manifest)
        (self.directory / PROGRESS_NAME).unlink(missing_ok=True)
        return manifest
