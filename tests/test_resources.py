"""What the augmentation and labelling actors ask Ray for, and which device they then use."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from augment import AugmentConfig
from augment.rules import build_rule
from augment.stage import actor_plans
from distill.common.config_io import ConfigError
from distill.common.hardware import choose_device
from distill.common.ray_runtime import SHARD_NO_PROGRESS_TIMEOUT_SECONDS, ActorPlan, allow_long_shards, plan_actors

REPO = Path(__file__).resolve().parents[1]
GPU_NODE = {"CPU": 16.0, "GPU": 2.0}
CPU_NODE = {"CPU": 16.0}


def _config(rules, **extra) -> AugmentConfig:
    return AugmentConfig.from_dict({"columns": {"text_a": "sentence"}, "rules": rules, **extra})


MLM = {"mlm": {"model": "bert-base-uncased"}, "glove": {"path": "glove.txt"}}


def test_masked_lm_actors_share_the_gpus_of_a_gpu_cluster():
    tagging, writing = actor_plans(_config(MLM), GPU_NODE, blocks=100)
    assert writing == ActorPlan(actors=4, cpus=1, gpus=0.5)  # two per GPU
    assert tagging.gpus == 0 and tagging.actors == 16


def test_cpu_clusters_and_gpu_free_rules_reserve_no_gpu():
    assert actor_plans(_config(MLM), CPU_NODE, blocks=100)[1] == ActorPlan(16, 1, 0.0)
    assert actor_plans(_config(["mask", "pos"]), GPU_NODE, blocks=100)[1] == ActorPlan(16, 1, 0.0)
    on_cpu = _config({"mlm": {"model": "m", "device": "cpu"}})
    assert actor_plans(on_cpu, GPU_NODE, blocks=100)[1].gpus == 0


def test_explicit_gpu_share_workers_cpus_and_blocks_bound_the_pool():
    assert actor_plans(_config(MLM, gpus_per_actor=0.25), GPU_NODE, 100)[1] == ActorPlan(8, 1, 0.25)
    assert actor_plans(_config(MLM, gpus_per_actor=1.0), GPU_NODE, 100)[1] == ActorPlan(2, 1, 1.0)
    assert actor_plans(_config(MLM, workers=3), GPU_NODE, 100)[1] == ActorPlan(3, 1, 0.5)
    assert actor_plans(_config(MLM, workers=9), GPU_NODE, 100)[1].actors == 4  # no more than Ray can place
    assert actor_plans(_config(MLM), GPU_NODE, blocks=1)[1].actors == 1
    plan = actor_plans(_config(["mask"], cpus_per_actor=4), CPU_NODE, 100)[1]
    assert plan == ActorPlan(4, 4, 0.0) and plan.threads == 4


@pytest.mark.parametrize("share, message", [
    (1.0, "requested, but the Ray cluster has no GPUs"),
    (1.5, "use a fraction below 1 or a whole number"),
])
def test_impossible_gpu_requests_fail_in_one_line(share, message):
    with pytest.raises(ConfigError, match=message) as err:
        actor_plans(_config(MLM, gpus_per_actor=share), CPU_NODE if share == 1.0 else GPU_NODE, 10)
    assert err.value.key == "gpus_per_actor" and "\n" not in str(err.value)


def test_labelling_keeps_one_teacher_per_gpu():
    assert plan_actors(GPU_NODE, items=10) == ActorPlan(2, 1.0, 1.0)
    assert plan_actors(CPU_NODE, items=10, cpus_per_actor=4) == ActorPlan(4, 4.0, 0.0)
    assert plan_actors(CPU_NODE, items=3) == ActorPlan(3, 1.0, 0.0)


@pytest.mark.parametrize("requested, assigned, visible, cuda, expected", [
    ("auto", None, None, True, "cuda"),         # outside Ray: the usual default
    ("auto", None, None, False, "cpu"),
    ("auto", [], "", True, "cpu"),              # a Ray worker that reserved no GPU never takes one
    ("auto", [], None, True, "cpu"),
    ("auto", ["3"], "3", True, "cuda:0"),       # Ray narrowed CUDA_VISIBLE_DEVICES to the assigned GPU
    ("auto", ["3"], "2,3", True, "cuda:1"),     # RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES
    ("auto", ["1"], None, True, "cuda:1"),
    ("auto", ["0"], "0", False, "cpu"),         # assigned, but a CPU-only torch build
    ("cuda:2", [], "", True, "cuda:2"),         # an explicit device is the user's choice
    ("cpu", ["0"], "0", True, "cpu"),
])
def test_device_follows_the_gpus_ray_assigned(requested, assigned, visible, cuda, expected):
    assert choose_device(requested, assigned, visible, cuda) == expected


FAKE_GPU_RUN = """
import json, logging, sys, ray
from augment import AugmentConfig, run
logging.basicConfig(level=logging.INFO)
ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False)
config = AugmentConfig.from_dict({"columns": {"text_a": "sentence"}, "rules": {"mlm": {"model": sys.argv[1]}},
                                  "tinybert": {"n_aug": 2}, "rows_per_shard": 5, "workers": 2})  # 10 rows: 1 by default
result = run(sys.argv[2], sys.argv[3], config)
print(json.dumps([s["extra"]["mlm"] for s in result.manifest["shards"]]))
"""


@pytest.mark.slow
def test_masked_lm_actors_hold_the_gpu_ray_gives_them(tmp_path, tiny_mlm_dir):
    """A Ray node that declares one GPU (none is present): the pass-2 actors reserve half of it
    each, Ray hands them GPU 0, and with no CUDA in torch they say so and run on CPU."""
    data = tmp_path / "small.csv"
    lines = (REPO / "pipelines" / "samples" / "sentiment.csv").read_text(encoding="utf-8").splitlines()[:11]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(FAKE_GPU_RUN), str(tiny_mlm_dir), str(data),
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    shards = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(shards) == 2
    dtype = build_rule("mlm", {"model": str(tiny_mlm_dir)}).resolved_dtype("cpu")
    assert all(s == {"device": "cpu", "dtype": dtype, "ray_gpus": ["0"]} for s in shards)
    assert "2 actor(s), 1 CPU and 0.5 GPU each" in done.stderr
    assert "Ray assigned GPU 0 to this worker but torch sees no CUDA device" in done.stderr


def test_an_actor_larger_than_the_cluster_names_the_option_to_lower():
    with pytest.raises(ConfigError, match="one actor needs 32 CPU") as err:
        actor_plans(_config(["mask"], cpus_per_actor=32), CPU_NODE, 10)
    assert err.value.key == "cpus_per_actor"


def test_rows_per_actor_bound_the_auto_pool_and_the_environment_raises_it(monkeypatch):
    monkeypatch.delenv("DISTILL_MIN_ROWS_PER_ACTOR", raising=False)
    assert plan_actors(CPU_NODE, items=10, rows=300).actors == 2  # 256 rows per actor by default
    monkeypatch.setenv("DISTILL_MIN_ROWS_PER_ACTOR", "100")
    assert plan_actors(CPU_NODE, items=10, rows=300).actors == 3
    assert plan_actors(CPU_NODE, items=10, rows=300, workers=5).actors == 5  # `workers` is obeyed as given
    monkeypatch.setenv("DISTILL_MIN_ROWS_PER_ACTOR", "many")
    with pytest.raises(ConfigError, match="DISTILL_MIN_ROWS_PER_ACTOR='many': expected a positive whole number"):
        plan_actors(CPU_NODE, items=10, rows=300)


@pytest.mark.parametrize("before, after", [(1800, SHARD_NO_PROGRESS_TIMEOUT_SECONDS), (-1, -1), (10 ** 6, 10 ** 6)])
def test_a_shard_may_take_longer_than_ray_datas_half_hour_without_output(before, after):
    """A whole shard is one call: a slow teacher's long shard must not trip Ray Data's no-progress timeout (it did
    on a 2-core run whose Ray was paused for 53 minutes); a user's longer or disabled timeout is kept."""
    from ray.data import DataContext

    context = DataContext.get_current()
    saved = context.execution_no_progress_timeout_s
    try:
        context.execution_no_progress_timeout_s = before
        allow_long_shards()
        assert context.execution_no_progress_timeout_s == after
    finally:
        context.execution_no_progress_timeout_s = saved
