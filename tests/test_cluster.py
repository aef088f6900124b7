"""A real multi-process Ray cluster on loopback (a head and a second worker node, started and
stopped here): `augment_and_label.py --address` gives the same output as embedded Ray."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import augment
from distill.label import LabelConfig
from distill.label import run as label_run
from tests.conftest import REPO, SAMPLES, pipeline_command, pipeline_env

pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).parent / "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([RAY, "start", "--block", "--node-ip-address=127.0.0.1", "--num-cpus=1", *args],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True, env=dict(os.environ))


@pytest.fixture
def two_node_cluster(tmp_path):
    port = _free_port()
    head = _start([f"--port={port}", "--head", "--include-dashboard=false"], tmp_path / "head.log")
    nodes = [head]
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline:  # wait for the GCS before adding the worker node
            if subprocess.run([RAY, "status", f"--address={address}"], capture_output=True).returncode == 0:
                break
            time.sleep(1)
        nodes.append(_start([f"--address={address}"], tmp_path / "worker.log"))
        while time.time() < deadline:
            status = subprocess.run([RAY, "status", f"--address={address}"], capture_output=True, text=True).stdout
            if status.count("node_") >= 2 or "2.0 CPU" in status or "0.0/2.0 CPU" in status:
                break
            time.sleep(1)
        else:
            pytest.fail("the two-node cluster did not come up: " + (tmp_path / "head.log").read_text()[-2000:])
        yield address
    finally:
        for node in reversed(nodes):
            try:
                os.killpg(node.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for node in nodes:
            try:
                node.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
        record = Path("/tmp/ray/ray_current_cluster")  # `ray start` leaves this; a later plain ray.init() would chase it
        if record.exists() and record.read_text().strip().endswith(f":{port}"):
            record.unlink()


def test_cluster_run_equals_the_embedded_run(ray_local, two_node_cluster, tiny_teacher_dir, tmp_path):
    overrides = ["--set", "augment.rules=[mask, pos, ngram]", "--set", "augment.tang.n_iter=3",
                 "--set", "augment.rows_per_shard=60"]
    out = tmp_path / "cluster"
    result = subprocess.run(
        pipeline_command(out, tiny_teacher_dir, "--features", "cls", "--address", two_node_cluster, *overrides),
        cwd=REPO, capture_output=True, text=True, timeout=300, env=pipeline_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # the same job on the embedded (test-session) Ray
    reference = tmp_path / "embedded"
    config = augment.AugmentConfig.load(None, ["columns.text_a=sentence", "rules=[mask, pos, ngram]",
                                                "tang.n_iter=3", "rows_per_shard=60"])
    augment.run(SAMPLES / "sentiment.csv", reference / "augmented", config)
    cache = label_run(reference / "augmented", reference, LabelConfig(teacher=str(tiny_teacher_dir), features=["cls"]))

    def shards(manifest_path):
        return [(s["file"], s["sha256"]) for s in json.loads(manifest_path.read_text())["shards"]]

    assert shards(out / "augmented" / "_manifest.json") == shards(reference / "augmented" / "_manifest.json")
    cluster_cache = out / "teacher" / cache.cache_dir.name
    assert shards(cluster_cache / "_manifest.json") == shards(cache.cache_dir / "_manifest.json")
