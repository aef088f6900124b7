"""Kill a real augment → label run with SIGKILL while the teacher labels; the rerun resumes."""

from __future__ import annotations

import json
import subprocess

import pytest

from distill.label import LabelConfig, run
from tests.conftest import REPO, kill_group_when, pipeline_command, pipeline_env, settled_commit_count

pytestmark = pytest.mark.slow


def test_kill_while_labelling_then_resume(ray_local, minilm_teacher_dir, tmp_path):
    out = tmp_path / "run"
    args = pipeline_command(out, minilm_teacher_dir, "--features", "cls", "--teacher-actors", "1",
                            "--set", "augment.rows_per_shard=12")
    proc = subprocess.Popen(args, cwd=REPO, env=pipeline_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    commits = lambda: list(out.glob("teacher/*/_commits/*.json"))  # noqa: E731
    kill_group_when(proc, lambda: len(commits()) >= 2)
    cache_dir = commits()[0].parent.parent
    committed = settled_commit_count(cache_dir)
    total = len(json.loads((out / "augmented" / "_manifest.json").read_text())["shards"])
    assert 2 <= committed < total, (committed, total)
    assert not (cache_dir / "_manifest.json").exists()

    config = LabelConfig(teacher=str(minilm_teacher_dir), features=["cls"], workers=2)
    resumed = run(out / "augmented", out, config)
    assert resumed.cache_dir == cache_dir and resumed.shards_written == total - committed
    assert not list(cache_dir.glob("*.tmp-*")), "temporary files of the killed run were swept"
    reference = run(out / "augmented", tmp_path / "reference", config)
    assert [s["sha256"] for s in resumed.manifest["shards"]] == [s["sha256"] for s in reference.manifest["shards"]]
    assert resumed.manifest["totals"]["rows"] == json.loads((out / "augmented" / "_manifest.json").read_text())["totals"]["rows"]
