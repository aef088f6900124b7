"""Fault injection: `kill -9` of the whole driver process group at random points, first during
augmentation, then (on the rerun) during labelling, for several seeds; a last rerun finishes.

The result must be the uninterrupted run's: the same uid set, no duplicates, and every
shard's sha256 equal to its manifest's (and to the uninterrupted run's)."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from distill.storage.fingerprint import hash_file
from tests.conftest import REPO, kill_group_when, pipeline_command, pipeline_env

pytestmark = pytest.mark.slow
EXTRA = ["--features", "cls", "--teacher-actors", "1", "--set", "augment.rows_per_shard=6"]
SHARDS = 50  # 300 sample sentences / 6


def _run(output: Path, teacher: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(pipeline_command(output, teacher, *EXTRA), cwd=REPO, env=pipeline_env(),
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def uninterrupted(tiny_teacher_dir, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("uninterrupted") / "run"
    _run(output, tiny_teacher_dir)
    return output


def _kill_at_random_point(output: Path, teacher: Path, stage_glob: str, rng: random.Random) -> str:
    """Start a run; once the stage matching `stage_glob` has begun and committed a random number
    of its shards, wait a random fraction of a second more and SIGKILL the process group."""
    proc = subprocess.Popen(pipeline_command(output, teacher, *EXTRA), cwd=REPO, env=pipeline_env(),
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    target = rng.randrange(0, SHARDS - 5)  # a random point of the stage, before its last few shards
    delay = rng.uniform(0.0, 0.1)

    def reached() -> bool:
        begun = list(output.glob(f"{stage_glob}/_progress.json"))
        return bool(begun) and len(list(begun[0].parent.glob("_commits/*.json"))) >= target

    kill_group_when(proc, reached, poll_seconds=0.02, delay=delay)
    return f"{stage_glob}: killed after >= {target} commits + {delay:.2f}s"


def _stage(directory: Path) -> tuple[dict, list[str]]:
    """The manifest, after checking each listed shard's bytes against it; and all uids in the shards."""
    import pyarrow.dataset as ds

    manifest = json.loads((directory / "_manifest.json").read_text())
    for shard in manifest["shards"]:
        assert hash_file(directory / shard["file"]) == shard["sha256"], shard["file"]
    fmt = "parquet" if manifest["shards"][0]["file"].endswith(".parquet") else "arrow"
    if fmt == "arrow":
        import pyarrow as pa

        uids = [u for s in manifest["shards"] for u in pa.ipc.open_stream(directory / s["file"]).read_all().column("uid").to_pylist()]
    else:
        uids = ds.dataset(directory, format="parquet").to_table(columns=["uid"]).column("uid").to_pylist()
    return manifest, uids


@pytest.mark.parametrize("seed", [0, 1])
def test_random_kills_during_augmentation_and_labelling_then_resume(seed, uninterrupted, tiny_teacher_dir, tmp_path):
    rng = random.Random(seed)
    output = tmp_path / "run"
    notes = [_kill_at_random_point(output, tiny_teacher_dir, "augmented", rng)]
    assert not (output / "augmented" / "_manifest.json").exists(), notes
    notes.append(_kill_at_random_point(output, tiny_teacher_dir, "teacher/*", rng))
    assert not list(output.glob("teacher/*/_manifest.json")), notes
    _run(output, tiny_teacher_dir)

    for stage in ("augmented", next(uninterrupted.glob("teacher/*/_manifest.json")).parent.relative_to(uninterrupted)):
        reference, reference_uids = _stage(uninterrupted / stage)
        resumed, uids = _stage(output / stage)
        assert len(uids) == len(set(uids)), f"duplicated rows in {stage} ({notes})"
        assert set(uids) == set(reference_uids), f"rows lost or added in {stage} ({notes})"
        assert [s["sha256"] for s in resumed["shards"]] == [s["sha256"] for s in reference["shards"]], notes
        assert not list((output / stage).glob("*.tmp-*"))
