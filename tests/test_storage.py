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


def test_disk_full_is_found_however_deeply_it_is_wrapped():
    import errno

    from distill.storage.failures import disk_full_message

    def wrapped(inner: BaseException) -> BaseException:
        try:
            try:
                raise inner
            except BaseException as err:
                raise RuntimeError("task failed") from err
        except RuntimeError as outer:
            return outer

    direct = disk_full_message(wrapped(OSError(errno.ENOSPC, "No space left on device", "/out/part-00003.arrow")), "/out")
    assert direct.startswith("no space left on device writing /out/part-00003.arrow (output /out)") and "rerun" in direct
    textual = disk_full_message(wrapped(OSError("[Errno 28] Error writing bytes to file. Detail: [errno 28] "
                                                "No space left on device")), "s3://b/run")
    assert textual.startswith("no space left on device (output s3://b/run)")
    assert disk_full_message(wrapped(OSError(errno.EACCES, "Permission denied")), "/out") is None
    assert disk_full_message(ValueError("bad"), "/out") is None


def test_remote_mirror_uploads_in_commit_order_and_pulls_only_committed_shards(tmp_path):
    """Through fsspec's in-memory filesystem (the S3 server tests are in test_remote_storage.py)."""
    import pyarrow.fs as pafs

    from distill.storage.remote import RemoteMirror, filesystem

    uri = f"memory://bucket-{tmp_path.name}/run"
    fs, root = filesystem(uri)
    local = tmp_path / "staging"
    stage = StageDir(local / "augmented", "test", "f1")
    stage.begin()
    records = [stage.commit_shard(pa.table({"x": [i, i + 1]}), f"part-0000{i}.parquet") for i in range(2)]
    (local / "augmented" / "part-00007.parquet").write_bytes(b"being written")  # no commit record yet
    mirror = RemoteMirror(uri, local)
    mirror.push()
    def names() -> list[str]:
        infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
        return sorted(i.path.split("/run/")[1] for i in infos if i.is_file)

    assert "augmented/part-00000.parquet" in names() and "augmented/_commits/part-00001.parquet.json" in names()
    assert "augmented/part-00007.parquet" not in names() and "augmented/_manifest.json" not in names()

    extras = ["augmented/_rejects.jsonl", "augmented/README.md", "augmented/teacher_files/config.json"]
    for extra in extras:
        (local / extra).parent.mkdir(parents=True, exist_ok=True)
        (local / extra).write_text("{}")
    (local / "LATEST").write_text("augmented\n")  # names a stage whose manifest is not published yet
    mirror.push()
    assert "LATEST" not in names() and not set(extras) & set(names())

    (local / "augmented" / "part-00007.parquet").unlink()
    stage.finalize(records, {})
    mirror.push()
    assert "augmented/_manifest.json" in names() and "augmented/_progress.json" not in names()
    assert set(extras) <= set(names()) and "LATEST" in names()
    with fs.open_output_stream(f"{root}/augmented/part-00009.parquet") as out:  # an object no record vouches for
        out.write(b"partial")

    fresh = RemoteMirror(uri, tmp_path / "fresh-machine")
    fresh.pull()
    pulled = sorted(p.relative_to(tmp_path / "fresh-machine").as_posix() for p in (tmp_path / "fresh-machine").rglob("*") if p.is_file())
    assert "augmented/part-00009.parquet" not in pulled
    assert StageDir(tmp_path / "fresh-machine" / "augmented", "test", "f1").is_complete()

    stage.begin()  # the stage is redone: the old manifest must leave the remote before any shard changes
    mirror.push()
    assert "augmented/_manifest.json" not in names()
