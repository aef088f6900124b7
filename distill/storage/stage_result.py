"""What a shard-writing stage (augment, corpus) returns: where its output is and what this run did."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class StageResult:
    output_dir: Path
    manifest: dict[str, Any]
    skipped: bool  # the stage was already complete for this fingerprint
    shards_written: int
    seconds: float

    def state(self) -> str:
        """`[up to date, nothing to do, 0.1s]` or `[wrote 3 shard(s), 12.0s]`, the end of a summary line."""
        done = "up to date, nothing to do" if self.skipped else f"wrote {self.shards_written} shard(s)"
        return f"[{done}, {self.seconds:.1f}s]"
