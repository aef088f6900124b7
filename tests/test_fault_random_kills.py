"""Fault injection: `kill -9` of the driver and all its Ray processes at a random point of augmentation,
then (on the rerun) at a random point of labelling; a last rerun finishes.

Each rerun must redo only the shards without a commit record, and the result must be the
uninterrupted run's: the same uid set, no duplicates, and every shard's sha256 equal to its
manifest's and to the uninterrupted run's."""

from __future__ import annotations

import json
import random
import re
import subprocess
from pathlib import Path

import pytest

from distill.storage.fingerprint import hash_file
from tests.conftest import KILLABLE_RUN, REPO, kill_group_when, pipeline_command, pipeline_env, settled_commit_count

pytestmark = pytest.mark.slow


def _kill_at_random_point(output: Path, teacher: Path, stage_glob: str, shards: int, rng: random.Random) -> tuple[int, str]:
    """Start a run; once the stage matching `stage_glob` has begun and committed a random number of its
    shards, wait a random few milliseconds more and SIGKILL the whole session. Returns the commit
    records left (once settled) and the run's log."""
    proc = subprocess.Popen(pipeline_command(output, teacher, *KILLABLE_RUN), cwd=REPO, env=pipeline_env(),
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # a random point in the stage's first half: 12-row shards commit up to ~50 a second, so the kill lands
    # a few shards past it
    target = rng.randrange(1, shards // 2)
    delay = rng.uniform(0.0, 0.03)  # about one shard write: the kill can land inside one

    def reached() -> bool:
        begun = list(output.glob(f"{stage_glob}/_progress.json"))
        return bool(begun) and len(list(begun[0].parent.glob("_commits/*.json"))) >= target

    kill_group_when(proc, reached, poll_seconds=0.02, delay=delay)
    stage = next(output.glob(f"{stage_glob}/_progress.json")).parent
    committed = settled_commit_count(stage)
    assert target <= committed < shards, (stage_glob, target, committed)
    assert not (stage / "_manifest.json").exists()
    return committed, proc.stderr.read()


def _stage(directory: Path) -> tuple[dict, list[str]]:
    """The manifest, after checking each listed shard's bytes against it; and all uids in the shards."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    manifest = json.loads((directory / "_manifest.json").read_text())
    for shard in manifest["shards"]:
        assert hash_file(directory / shard["file"]) == shard["sha256"], shard["file"]
    if manifest["shards"][0]["file"].endswith(".parquet"):
        uids = ds.dataset(directory, format="parquet").to_table(columns=["uid"]).column("uid").to_pylist()
    else:
        uids = [u for s in manifest["shards"] for u in pa.ipc.open_stream(directory / s["file"]).read_all().column("uid").to_pylist()]
    return manifest, uids


def test_random_kills_during_augmentation_and_labelling_then_resume(reference_run, tiny_teacher_dir, tmp_path):
    uninterrupted = reference_run(tiny_teacher_dir, *KILLABLE_RUN)
    cache = next(uninterrupted.glob("teacher/*/_manifest.json")).parent.relative_to(uninterrupted)
    shards = {stage: len(json.loads((uninterrupted / stage / "_manifest.json").read_text())["shards"])
              for stage in ("augmented", cache)}
    rng = random.Random(0)
    output = tmp_path / "run"
    augmented, _ = _kill_at_random_point(output, tiny_teacher_dir, "augmented", shards["augmented"], rng)
    labelled, log = _kill_at_random_point(output, tiny_teacher_dir, "teacher/*", shards[cache], rng)
    assert f"{shards['augmented']} shard(s) of 12 rows planned, {shards['augmented'] - augmented} to write" in log
    done = subprocess.run(pipeline_command(output, tiny_teacher_dir, *KILLABLE_RUN), cwd=REPO, env=pipeline_env(),
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    planned = re.search(r"(\d+) cache shard\(s\) planned, (\d+) to label", done.stderr)
    assert planned and int(planned.group(2)) == shards[cache] - labelled, done.stderr[-3000:]  # only the missing ones

    notes = f"killed after {augmented} augmented and {labelled} labelled shards"
    for stage in ("augmented", cache):
        reference, reference_uids = _stage(uninterrupted / stage)
        resumed, uids = _stage(output / stage)
        assert len(uids) == len(set(uids)), f"duplicated rows in {stage} ({notes})"
        assert set(uids) == set(reference_uids), f"rows lost or added in {stage} ({notes})"
        assert [s["sha256"] for s in resumed["shards"]] == [s["sha256"] for s in reference["shards"]], notes
        assert not list((output / stage).glob("*.tmp-*")), "temporary files of the killed runs were swept"
