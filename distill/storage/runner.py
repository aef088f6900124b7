"""The sharded-stage protocol, written once for augment, corpus and label (docs/design.md, "Atomic commits"):
lock, skip if finished, begin, keep the shards whose record matches, write the others, refuse while any is
missing, manifest last. A stage brings only its fingerprint, its per-shard work and its manifest body."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Generic, TypeVar

from distill.storage.lock import OutputLock
from distill.storage.shards import ShardRecord
from distill.storage.stage_dir import StageDir
from distill.storage.fingerprint import library_versions

K = TypeVar("K", bound=Hashable)


@dataclass
class StageRun(Generic[K]):
    """What the runner did: the manifest, whether a finished output was reused, the shard keys it wrote."""

    manifest: dict[str, Any]
    skipped: bool
    pending: list[K]
    write_seconds: float = 0.0  # wall time of `write`, start-up included


@dataclass
class StageResult:
    """What a stage returns: where its output is and what this run did."""

    output_dir: Path
    manifest: dict[str, Any]
    skipped: bool  # the stage was already complete for this fingerprint
    shards_written: int
    seconds: float

    @classmethod
    def of(cls, output_dir: Path, done: StageRun, started: float, **extra: Any) -> StageResult:
        seconds = time.perf_counter() - started
        return cls(Path(output_dir), done.manifest, done.skipped, len(done.pending), seconds, **extra)

    def state(self) -> str:
        """`[up to date, nothing to do, 0.1s]` or `[wrote 3 shard(s), 12.0s]`, the end of a summary line."""
        done = "up to date, nothing to do" if self.skipped else f"wrote {self.shards_written} shard(s)"
        return f"[{done}, {self.seconds:.1f}s]"


def run_sharded_stage(directory: Path, stage_name: str, fingerprint: str, shards: Mapping[K, str],
                      write: Callable[[StageDir, list[K]], None], body: Callable[[list[ShardRecord]], dict[str, Any]],
                      *, on_begin: Callable[[int], None] = lambda pending: None,
                      finished: Callable[[StageDir], bool] = StageDir.is_complete,
                      before_finalize: Callable[[list[ShardRecord], dict[str, Any]], None] | None = None,
                      overwrite: bool = False, named_by_fingerprint: bool = False) -> StageRun[K]:
    """Run one stage into `directory`. `shards` maps the stage's shard keys to file names, in manifest
    order; `write(stage, pending)` commits the pending keys' shards through `stage`; `body(records)`
    builds the manifest body from the verified records (the runner adds `created` and `versions`);
    `on_begin(n)` runs once the directory is claimed and n shards are pending (log the plan, side files).
    `named_by_fingerprint` (a cache): a damaged manifest is redone from the committed shards, not refused."""
    with OutputLock(directory):
        stage = StageDir(directory, stage_name, fingerprint, named_by_fingerprint)
        if finished(stage):
            return StageRun(stage.manifest(), True, [])
        stage.begin(overwrite=overwrite)
        verified = {key: stage.valid_record(name) for key, name in shards.items()}  # hashes each shard once
        pending = [key for key, record in verified.items() if record is None]
        on_begin(len(pending))
        started = time.perf_counter()
        if pending:
            write(stage, pending)
        seconds = time.perf_counter() - started if pending else 0.0
        records = [verified[key] or stage.valid_record(name) for key, name in shards.items()]  # only what was written
        missing = [name for name, record in zip(shards.values(), records) if record is None]
        if missing:
            raise RuntimeError(f"{directory}: shard(s) {', '.join(missing)} missing after the run; rerun to resume")
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        manifest_body = {"created": created, **body(records), "versions": library_versions()}
        if before_finalize is not None:
            before_finalize(records, manifest_body)
        return StageRun(stage.finalize(records, manifest_body), False, pending, seconds)
