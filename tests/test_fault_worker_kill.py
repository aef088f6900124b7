"""Fault injection: SIGKILL a Ray worker process (a teacher actor) in the middle of labelling.
Ray restarts the actor and retries its task; the run finishes with the same output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from distill.label import LabelConfig, run
from tests.conftest import REPO, pipeline_command, pipeline_env

pytestmark = pytest.mark.slow


def _actor_pids(name: str) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if name in line and "ps -eo" not in line]


def test_killed_teacher_actor_is_restarted_and_the_output_is_unchanged(ray_local, minilm_teacher_dir, tmp_path):
    out = tmp_path / "run"
    args = pipeline_command(out, minilm_teacher_dir, "--features", "cls", "--teacher-actors", "2",
                            "--set", "augment.rows_per_shard=20")
    proc = subprocess.Popen(args, cwd=REPO, env=pipeline_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed = None
    deadline = time.time() + 300
    before = set(_actor_pids("TeacherLabeler"))  # the test session's own actors, if any, are not ours to kill
    while time.time() < deadline and killed is None:
        if proc.poll() is not None:
            pytest.fail(f"run ended before a teacher actor could be killed: {proc.stderr.read().decode()[-2000:]}")
        commits = list(out.glob("teacher/*/_commits/*.json"))
        actors = [pid for pid in _actor_pids("TeacherLabeler") if pid not in before]
        if commits and actors:  # labelling is under way: kill one actor mid-stream
            os.kill(actors[0], signal.SIGKILL)
            killed = actors[0]
        time.sleep(0.05)
    assert killed is not None, "no teacher actor seen"
    stderr = proc.communicate(timeout=300)[1].decode()
    assert proc.returncode == 0, stderr[-3000:]
    cache_dir = next(out.glob("teacher/*/_manifest.json")).parent
    assert not list(cache_dir.glob("*.tmp-*"))
    reference = run(out / "augmented", tmp_path / "reference", LabelConfig(teacher=str(minilm_teacher_dir), features=["cls"]))
    ours = json.loads((cache_dir / "_manifest.json").read_text())
    assert [(s["file"], s["sha256"]) for s in ours["shards"]] == [(s["file"], s["sha256"]) for s in reference.manifest["shards"]]
    assert ours["totals"]["rows"] == json.loads((out / "augmented" / "_manifest.json").read_text())["totals"]["rows"]
