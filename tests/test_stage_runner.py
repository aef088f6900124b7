"""The one sharded-stage runner (distill/storage/runner.py), driven by a fake per-shard writer: no Ray."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from distill.storage.runner import StageResult, run_sharded_stage
from distill.storage.stage_dir import MANIFEST_NAME, StageDir, StageMismatchError

SHARDS = {i: f"part-{i:05d}.arrow" for i in range(3)}


class FakeWriter:
    """Commits shard i as a table of i + 1 rows, except the keys in `skip`; records what it was asked."""

    def __init__(self, skip: tuple[int, ...] = ()) -> None:
        self.calls: list[list[int]] = []
        self.skip = skip

    def __call__(self, stage: StageDir, pending: list[int]) -> None:
        self.calls.append(list(pending))
        for key in pending:
            if key not in self.skip:
                stage.commit_shard(pa.table({"x": list(range(key + 1))}), SHARDS[key], {"key": key})


def _run(directory, write, fingerprint="fp-1", **hooks):
    body = lambda records: {"total": sum(r.rows for r in records)}  # noqa: E731
    return run_sharded_stage(directory, "fake", fingerprint, SHARDS, write, body, **hooks)


def test_runner_writes_every_shard_then_skips_a_finished_stage(tmp_path):
    first = FakeWriter()
    done = _run(tmp_path, first)
    assert first.calls == [[0, 1, 2]] and not done.skipped and done.pending == [0, 1, 2]
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["stage"] == "fake" and manifest["fingerprint"] == "fp-1" and manifest["complete"]
    assert manifest["total"] == 6 and [s["file"] for s in manifest["shards"]] == list(SHARDS.values())
    assert not (tmp_path / "_progress.json").exists() and not (tmp_path / "_lock").exists()

    again = FakeWriter()
    reused = _run(tmp_path, again)
    assert again.calls == [] and reused.skipped and reused.pending == [] and reused.manifest == manifest
    result = StageResult.of(tmp_path, reused, 0.0)
    assert result.shards_written == 0 and result.state().startswith("[up to date, nothing to do")


def test_runner_refuses_missing_shards_then_resumes_only_those(tmp_path):
    with pytest.raises(RuntimeError, match=r"shard\(s\) part-00001\.arrow missing after the run; rerun to resume"):
        _run(tmp_path, FakeWriter(skip=(1,)))
    assert not (tmp_path / MANIFEST_NAME).exists() and not (tmp_path / "_lock").exists()

    resumed = FakeWriter()
    done = _run(tmp_path, resumed)
    assert resumed.calls == [[1]] and done.pending == [1] and done.manifest["total"] == 6

    (tmp_path / SHARDS[2]).write_bytes(b"corrupt")  # a damaged finished stage redoes only the damaged shard
    repaired = FakeWriter()
    assert _run(tmp_path, repaired).pending == [2] and repaired.calls == [[2]]


def test_runner_hooks_run_in_protocol_order_and_another_fingerprint_is_refused(tmp_path):
    events = []
    _run(tmp_path, FakeWriter(), finished=lambda stage: events.append("finished?") or False,
         on_begin=lambda pending: events.append(f"begin {pending}"),
         before_finalize=lambda records, body: events.append(
             f"before finalize {body['total']} {(tmp_path / MANIFEST_NAME).exists()}"))
    assert events == ["finished?", "begin 3", "before finalize 6 False"]

    with pytest.raises(StageMismatchError):
        _run(tmp_path, FakeWriter(), fingerprint="fp-2")
    redo = FakeWriter()
    assert _run(tmp_path, redo, fingerprint="fp-2", overwrite=True).pending == [0, 1, 2]
