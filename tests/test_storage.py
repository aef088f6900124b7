"""Storage layer: atomic commits, shard records, stage directories, the output lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow as pa
import pytest

from distill.storage import OutputLock, OutputLockedError, StageDir, StageMismatchError
from distill.storage.atomic import commit_file
from distill.storage.shards import read_shard


def test_failed_write_leaves_nothing_behind(tmp_path):
    def explode(tmp):
        tmp.write_bytes(b"half a file")
        raise OSError("disk full")

    with pytest.raises(OSError):
        commit_file(tmp_path / "part-00000.parquet", explode)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_commit_record_verifies_and_detects_corruption(tmp_path, fmt):
    stage = StageDir(tmp_path, "test", "f1")
    stage.begin()
    table = pa.table({"uid": ["a-0", "b-0"], "x": [1, 2]})
    record = stage.commit_shard(table, f"part-00000.{fmt}")
    assert read_shard(tmp_path / record.file).equals(table)
    assert stage.valid_record(record.file) == record
    with open(tmp_path / record.file, "r+b") as handle:
        handle.seek(record.bytes // 2)
        byte = handle.read(1)
        handle.seek(record.bytes // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    assert stage.valid_record(record.file) is None


def test_stage_dir_refuses_another_fingerprint(tmp_path):
    StageDir(tmp_path, "test", "f1").begin()
    with pytest.raises(StageMismatchError, match="different input/config"):
        StageDir(tmp_path, "test", "f2").begin()
    StageDir(tmp_path, "test", "f2").begin(overwrite=True)
    assert json.loads((tmp_path / "_progress.json").read_text())["fingerprint"] == "f2"


def test_lock_refuses_a_live_holder_and_takes_over_a_dead_one(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "_lock").write_text(json.dumps({"host": os.uname().nodename, "pid": holder.pid}))
        with pytest.raises(OutputLockedError, match=f"locked by .*/{holder.pid}"):
            OutputLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    with OutputLock(tmp_path) as lock:  # holder is dead now: stale lock is taken over
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert not (tmp_path / "_lock").exists()
