"""Remote input and output on a real S3-compatible server (moto) on loopback.

A remote run must equal a local one, its shards must be readable straight from the bucket,
and a run killed mid-labelling must leave nothing a reader accepts while a fresh machine
(an empty staging directory) resumes from what was committed remotely.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess

import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest

from distill.cache import CacheError, load
from tests.conftest import BUCKET, KILLABLE_RUN, REPO, SAMPLES, kill_group_when, pipeline_command, pipeline_env

pytestmark = pytest.mark.slow


def _pipeline(input_path: str, output: str, teacher, staging, *extra: str) -> subprocess.Popen:
    args = pipeline_command(output, teacher, "--staging", str(staging), *KILLABLE_RUN, *extra, source=input_path)
    return subprocess.Popen(args, cwd=REPO, env=pipeline_env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, out[-3000:]
    return out


@pytest.fixture(scope="module")
def reference(reference_run, tiny_teacher_dir):
    """The same run on local disk (shared with the other fault tests)."""
    out = reference_run(tiny_teacher_dir, *KILLABLE_RUN)
    cache = load(out)
    return {"augmented": json.loads((out / "augmented" / "_manifest.json").read_text()), "cache": cache.manifest,
            "uids": sorted(cache.table.column("uid").to_pylist())}


def _remote_files(fs, prefix: str) -> dict[str, int]:
    infos = fs.get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
    return {i.path[len(prefix) + 1 :]: i.size for i in infos if i.type == pafs.FileType.File}


def _sha256(fs, path: str) -> str:
    with fs.open_input_stream(path) as stream:
        return hashlib.sha256(stream.read()).hexdigest()


def _shas(manifest: dict) -> list[str]:
    return [s["sha256"] for s in manifest["shards"]]


def test_remote_run_equals_local_run_and_is_readable_in_place(s3, reference, tiny_teacher_dir, tmp_path, monkeypatch):
    _finish(_pipeline(f"s3://{BUCKET}/input/sentiment.csv", f"s3://{BUCKET}/run", tiny_teacher_dir, tmp_path / "staging"))
    prefix = f"{BUCKET}/run"
    files = _remote_files(s3, prefix)
    latest = files and s3.open_input_stream(f"{prefix}/teacher/LATEST").read().decode().strip()
    augmented = json.loads(s3.open_input_stream(f"{prefix}/augmented/_manifest.json").read())
    cache_manifest = json.loads(s3.open_input_stream(f"{prefix}/teacher/{latest}/_manifest.json").read())
    assert _shas(augmented) == _shas(reference["augmented"])
    assert _shas(cache_manifest) == _shas(reference["cache"])
    for stage, manifest in (("augmented", augmented), (f"teacher/{latest}", cache_manifest)):
        for shard in manifest["shards"]:  # every object is the complete, committed shard
            assert _sha256(s3, f"{prefix}/{stage}/{shard['file']}") == shard["sha256"]
    assert not [name for name in files if ".tmp-" in name or name.endswith("_progress.json")]

    # readers: pyarrow straight from the bucket (it skips _-prefixed files), and cache.load on a new machine
    table = ds.dataset(f"{prefix}/augmented", filesystem=s3, format="parquet").to_table()
    assert table.num_rows == augmented["totals"]["rows"]
    monkeypatch.setenv("DISTILL_STAGING", str(tmp_path / "reader-staging"))
    cache = load(f"s3://{BUCKET}/run")
    assert sorted(cache.table.column("uid").to_pylist()) == reference["uids"]


def test_killed_remote_run_leaves_nothing_a_reader_accepts_and_a_fresh_machine_resumes(
        s3, reference, tiny_teacher_dir, tmp_path, monkeypatch):
    output, prefix = f"s3://{BUCKET}/killed", f"{BUCKET}/killed"
    proc = _pipeline(str(SAMPLES / "sentiment.csv"), output, tiny_teacher_dir, tmp_path / "machine-1",
                     "--sync-seconds", "0.3")
    records = lambda: [n for n in _remote_files(s3, prefix) if n.startswith("teacher/") and "/_commits/" in n]  # noqa: E731
    kill_group_when(proc, lambda: len(records()) >= 2, poll_seconds=0.1)

    files = _remote_files(s3, prefix)
    cache_dir = records()[0].split("/_commits/")[0]
    assert f"{cache_dir}/_manifest.json" not in files and "teacher/LATEST" not in files
    monkeypatch.setenv("DISTILL_STAGING", str(tmp_path / "reader"))
    with pytest.raises(CacheError, match="not a finished teacher cache"):
        load(output)
    accepted = 0
    for name in files:  # an object under a final name is either vouched for by its record or ignored
        if name.startswith(f"{cache_dir}/part-") and f"{cache_dir}/_commits/{name.split('/')[-1]}.json" in files:
            record = json.loads(s3.open_input_stream(f"{prefix}/{cache_dir}/_commits/{name.split('/')[-1]}.json").read())
            assert _sha256(s3, f"{prefix}/{name}") == record["sha256"]
            accepted += 1
    total = len(reference["cache"]["shards"])
    assert 2 <= accepted < total

    log = _finish(_pipeline(str(SAMPLES / "sentiment.csv"), output, tiny_teacher_dir, tmp_path / "machine-2"))
    assert "pulled" in log
    planned = re.search(r"(\d+) cache shard\(s\) planned, (\d+) to label", log)
    latest = s3.open_input_stream(f"{prefix}/teacher/LATEST").read().decode().strip()
    manifest = json.loads(s3.open_input_stream(f"{prefix}/teacher/{latest}/_manifest.json").read())
    assert _shas(manifest) == _shas(reference["cache"])
    assert int(planned.group(1)) == total and int(planned.group(2)) == total - accepted  # only the missing ones
    monkeypatch.setenv("DISTILL_STAGING", str(tmp_path / "reader-2"))
    uids = load(output).table.column("uid").to_pylist()
    assert sorted(uids) == reference["uids"] and len(set(uids)) == len(uids)
