"""Kill a real augmentation run with SIGKILL mid-way; the rerun redoes only missing shards."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from augment import AugmentConfig, run
from distill.storage.shards import read_shards
from tests.conftest import REPO, SAMPLES, kill_group_when, pipeline_env, settled_commit_count

pytestmark = pytest.mark.slow
SHARDS = 40


def _rows(directory):
    table = read_shards(directory)
    return sorted(zip(*(table.column(c).to_pylist() for c in ("uid", "text_a", "rule"))))


def test_kill_then_resume_matches_an_uninterrupted_run(ray_local, tmp_path):
    lines = (SAMPLES / "sentiment.csv").read_text(encoding="utf-8").splitlines()
    big = tmp_path / "big.csv"
    big.write_text("\n".join([lines[0]] + lines[1:] * 4) + "\n", encoding="utf-8")  # 1 200 rows
    out = tmp_path / "killed"
    overrides = ["columns.text_a=sentence", "rows_per_shard=30", "workers=2"]
    args = [sys.executable, "-m", "augment", str(big), str(out), "-q"] + [f"--set={o}" for o in overrides]
    proc = subprocess.Popen(args, cwd=REPO, env=pipeline_env(), start_new_session=True,  # its own embedded Ray
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    kill_group_when(proc, lambda: len(list((out / "_commits").glob("*.json"))) >= 3, timeout=240)
    committed = settled_commit_count(out)
    assert 3 <= committed < SHARDS, committed
    assert not (out / "_manifest.json").exists()

    config = AugmentConfig.load(None, overrides)
    resumed = run(big, out, config)
    assert resumed.shards_written == SHARDS - committed
    assert not list(out.glob("*.tmp-*")), "temporary files of the killed run were swept"

    reference = run(big, tmp_path / "reference", config)
    assert _rows(out) == _rows(tmp_path / "reference")
    manifest = json.loads((out / "_manifest.json").read_text())
    assert [s["sha256"] for s in manifest["shards"]] == [s["sha256"] for s in reference.manifest["shards"]]
