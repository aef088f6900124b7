"""Fault injection: the output filesystem fills up mid-run (a tmpfs of a few MB, mounted in a
private mount namespace with `unshare`, so no root on the host and nothing left mounted).

The run must stop with one clear line, leave no partial or unverifiable shard, and a rerun
with space must finish with the same bytes as a run that never ran out of space."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from distill.storage.fingerprint import hash_file
from tests.conftest import REPO, pipeline_command, pipeline_env

pytestmark = pytest.mark.slow
RUN_ARGS = ["--features", "hidden,attention,embedding", "--set", "label.dtype=float32",
            "--set", "augment.rows_per_shard=12", "--teacher-actors", "1"]


def _namespace_prefix() -> list[str]:
    """`unshare` into a private mount namespace (mapping to root when not root), if this machine allows it."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    prefix = ["unshare", "--mount", "--propagation", "private"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    probe = subprocess.run([*prefix, "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt 2>/dev/null || "
                            "mount -t tmpfs -o size=1m tmpfs \"$0\"", "/tmp"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a private namespace here: {probe.stderr.decode().strip()}")
    return prefix


def _committed_state(cache_dir: Path) -> tuple[int, list[str]]:
    """(shards vouched for by a matching record, problems: temporaries, unrecorded or mismatched shards)."""
    problems, good = [], 0
    for path in cache_dir.rglob("*"):
        if ".tmp-" in path.name:
            problems.append(f"temporary file {path.name}")
    for shard in cache_dir.glob("part-*"):
        record = cache_dir / "_commits" / f"{shard.name}.json"
        if not record.exists():
            problems.append(f"{shard.name} has no commit record")
        elif json.loads(record.read_text())["sha256"] != hash_file(shard):
            problems.append(f"{shard.name} does not match its record")
        else:
            good += 1
    return good, problems


def test_full_filesystem_fails_cleanly_and_a_rerun_with_space_completes(reference_run, tiny_teacher_dir, tmp_path):
    prefix = _namespace_prefix()
    env = pipeline_env()
    reference = reference_run(tiny_teacher_dir, *RUN_ARGS)
    augmented_bytes = sum(f.stat().st_size for f in (reference / "augmented").rglob("*") if f.is_file())
    cache_dir = next(reference.glob("teacher/*/_manifest.json")).parent
    cache_bytes = sum(f.stat().st_size for f in cache_dir.rglob("*") if f.is_file())
    small_kb = (augmented_bytes + cache_bytes // 3) // 1024 + 64  # room for augmenting, a third of the cache

    mount, snapshots = tmp_path / "mnt", tmp_path / "snapshots"
    mount.mkdir()
    snapshots.mkdir()
    run = " ".join(shlex.quote(a) for a in pipeline_command(mount / "run", tiny_teacher_dir, *RUN_ARGS))
    script = f"""
        mount -t tmpfs -o size={small_kb}k tmpfs {mount}
        {run} > {snapshots}/first.out 2> {snapshots}/first.err; echo $? > {snapshots}/first.rc
        cp -a {mount}/run {snapshots}/after-failure
        mount -o remount,size=256m {mount}
        {run} > {snapshots}/second.out 2> {snapshots}/second.err; echo $? > {snapshots}/second.rc
        cp -a {mount}/run {snapshots}/final
    """
    subprocess.run([*prefix, "sh", "-c", script], cwd=REPO, env=env, check=True, timeout=600)

    first_err = (snapshots / "first.err").read_text()
    assert (snapshots / "first.rc").read_text().strip() == "2", first_err[-3000:]
    last = first_err.strip().splitlines()[-1]
    assert last.startswith("error: no space left on device") and "rerun" in last, last
    assert "Traceback" not in first_err
    failed = snapshots / "after-failure"
    assert (failed / "augmented" / "_manifest.json").exists()  # the finished stage is intact
    partial_cache = failed / "teacher" / cache_dir.name
    assert not (partial_cache / "_manifest.json").exists() and not (failed / "teacher" / "LATEST").exists()
    kept, problems = _committed_state(partial_cache)
    assert problems == [] and kept < len(list(cache_dir.glob("part-*")))

    assert (snapshots / "second.rc").read_text().strip() == "0", (snapshots / "second.err").read_text()[-3000:]
    second_log = (snapshots / "second.err").read_text()
    assert "to label" in second_log and "up to date" in second_log  # augmentation was not redone
    final_manifest = json.loads((snapshots / "final" / "teacher" / cache_dir.name / "_manifest.json").read_text())
    reference_manifest = json.loads((cache_dir / "_manifest.json").read_text())
    assert [s["sha256"] for s in final_manifest["shards"]] == [s["sha256"] for s in reference_manifest["shards"]]
    _, problems = _committed_state(snapshots / "final" / "teacher" / cache_dir.name)
    assert problems == []
