"""Fault injection: SIGKILL a Ray worker process (one labelling a shard) in the middle of labelling.
Ray retries its task in another worker process; the run finishes with the same output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from distill.label import LabelConfig, run
from pipelines.augment_and_label import main
from tests.conftest import pipeline_args

pytestmark = pytest.mark.slow


def _worker_pids(name: str) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if name in line and "ps -eo" not in line]


def test_killed_teacher_worker_is_replaced_and_the_output_is_unchanged(ray_local, minilm_teacher_dir, tmp_path):
    out = tmp_path / "run"
    before = set(_worker_pids("TeacherLabeler"))  # workers of earlier tests, if any, are not ours to kill
    killed: list[int] = []

    def kill_one_teacher_worker_mid_labelling() -> None:
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            commits = list(out.glob("teacher/*/_commits/*.json"))
            workers = [pid for pid in _worker_pids("TeacherLabeler") if pid not in before]
            if commits and workers:  # labelling is under way: kill one worker mid-shard
                os.kill(workers[0], signal.SIGKILL)
                killed.append(workers[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_teacher_worker_mid_labelling, daemon=True)
    killer.start()
    args = pipeline_args(out, minilm_teacher_dir, "--features", "cls", "--teacher-actors", "2",
                         "--set", "augment.rows_per_shard=20")
    assert main(args) == 0  # on the session's Ray: the run's driver lives on, only a worker dies
    killer.join(timeout=10)
    assert killed, "no labelling worker seen"
    cache_dir = next(out.glob("teacher/*/_manifest.json")).parent
    assert not list(cache_dir.glob("*.tmp-*"))
    reference = run(out / "augmented", tmp_path / "reference", LabelConfig(teacher=str(minilm_teacher_dir), features=["cls"]))
    ours = json.loads((cache_dir / "_manifest.json").read_text())
    assert [(s["file"], s["sha256"]) for s in ours["shards"]] == [(s["file"], s["sha256"]) for s in reference.manifest["shards"]]
    assert ours["totals"]["rows"] == json.loads((out / "augmented" / "_manifest.json").read_text())["totals"]["rows"]
