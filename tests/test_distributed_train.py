"""Training on Ray Train workers (DDP, gloo): 2 workers on a real two-node loopback cluster train the same
recipe as 1 (same global batches, steps and schedule), and a training worker on embedded Ray
killed with SIGKILL (by the PID in Ray's actor table) is restarted by Ray Train and the run finishes
its steps from the last checkpoint.

Tolerances: the per-step loss of 2 workers (averaged over both) stays within 0.03 of the 1-worker
run's (only dropout masks differ; measured within 0.01 here), final dev accuracy within 0.1.
"""

from __future__ import annotations

import json

import pytest

from distill.common.columns import Columns
from distill.train.config import TrainConfig
from distill.train.loop import train
from tests.conftest import SAMPLES

pytestmark = pytest.mark.slow
RECIPE = {"student": {"name": "narrow_bert", "num_hidden_layers": 2, "hidden_size": 16, "num_attention_heads": 2,
                      "intermediate_size": 32},
          "losses": {"kd": {}, "ce": {}}, "max_steps": 30, "batch_size": 16, "learning_rate": 1e-3,
          "checkpoint_every": 10, "log_every": 1}


def _losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]


@pytest.fixture(scope="module")
def one_worker(logits_cache, tmp_path_factory):
    """The recipe trained by one worker in this process: the run the 2-worker runs must follow."""
    out = tmp_path_factory.mktemp("one") / "run"
    result = train(TrainConfig.from_dict(RECIPE), logits_cache, out, SAMPLES / "sentiment_dev.csv",
                   Columns(text_a="sentence"), teacher_report=False)
    assert result.steps == 30
    return out, result


def _student_command(recipe_path, cache, out, *extra) -> list[str]:
    import sys

    from tests.conftest import REPO

    return [sys.executable, str(REPO / "pipelines" / "train_student.py"), "--recipe", str(recipe_path), "--cache",
            str(cache), "--out", str(out), "--eval", str(SAMPLES / "sentiment_dev.csv"), "--text-a", "sentence",
            "--no-teacher-report", *extra]


def test_two_workers_on_a_two_node_cluster_match_one_worker(logits_cache, one_worker, two_node_cluster, tmp_path):
    import subprocess

    import yaml

    from tests.conftest import REPO, pipeline_env

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    result = subprocess.run(_student_command(recipe, logits_cache, tmp_path / "cluster", "--workers", "2", "--address",
                                             two_node_cluster), cwd=REPO, capture_output=True, text=True, timeout=400,
                            env=pipeline_env())
    assert result.returncode == 0, result.stderr[-3000:]
    (one_dir, one), cluster = one_worker, tmp_path / "cluster"
    a, b = _losses(one_dir), _losses(cluster)
    assert len(a) == len(b) == 30
    assert max(abs(x - y) for x, y in zip(a, b)) < 0.03  # same global batches; only dropout masks differ
    report = json.loads((cluster / "report.json").read_text())
    assert abs(report["student"]["accuracy"] - one.dev["accuracy"]) <= 0.1
    assert (cluster / "student" / "task.json").exists()
    recorded = json.loads((tmp_path / "cluster" / "recipe.json").read_text())
    assert recorded["workers"] == 2


def _train_worker_pids() -> list[int]:
    """PIDs of this session's live Ray Train workers as the cluster's actor table reports them (not a
    process search by name, which could hit workers this test did not start)."""
    import ray

    return [actor["Pid"] for actor in ray._private.state.actors().values()
            if actor["ActorClassName"] == "RayTrainWorker" and actor["State"] == "ALIVE"]


def test_a_killed_training_worker_is_restarted_and_the_run_finishes(logits_cache, tmp_path):
    import os
    import signal
    import threading
    import time

    from distill.train.run_dir import read_state

    out, killed = tmp_path / "run", {}

    def kill_a_worker_after_the_first_checkpoint() -> None:
        deadline = time.time() + 300
        while time.time() < deadline and (read_state(out) or {}).get("global_step", 0) < 20:
            time.sleep(0.2)
        killed.update(step=read_state(out)["global_step"], workers=_train_worker_pids())
        os.kill(killed["workers"][-1], signal.SIGKILL)

    killer = threading.Thread(target=kill_a_worker_after_the_first_checkpoint, daemon=True)
    killer.start()
    recipe = TrainConfig.from_dict({**RECIPE, "max_steps": 80, "checkpoint_every": 20})
    result = train(recipe, logits_cache, out, SAMPLES / "sentiment_dev.csv", Columns(text_a="sentence"),
                   teacher_report=False, workers=2)
    killer.join(timeout=60)
    assert len(killed["workers"]) == 2 and killed["step"] < 80
    state = read_state(out)
    assert result.steps == state["global_step"] == 80 and state["stage"] == 1
    assert (out / "checkpoint-last" / "trainer_state.json").exists() and (out / "student" / "task.json").exists()
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    assert steps[-1] == 80
