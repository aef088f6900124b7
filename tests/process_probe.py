"""A Ray Data callable that reports the process and instance that handled each batch (tests/test_shard_map.py);
a module of its own so Ray's workers import it by name."""

from __future__ import annotations

import itertools
import os

import pyarrow as pa

_BUILT = itertools.count(1)  # per worker process: instances built there


class ProcessReport:
    """Reports which process and which of that process's instances handled each batch."""

    def __init__(self, tag: str) -> None:
        self.tag, self.serial = tag, next(_BUILT)

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.num_rows
        return pa.table({"pid": [os.getpid()] * rows, "serial": [self.serial] * rows, "tag": [self.tag] * rows})
