"""A real multi-process Ray cluster on loopback (a head and a second worker node, started and
stopped by the `two_node_cluster` fixture): `augment_and_label.py --address` gives the same output
as embedded Ray."""

from __future__ import annotations

import json
import subprocess

import pytest

import augment
from distill.label import LabelConfig
from distill.label import run as label_run
from tests.conftest import REPO, SAMPLES, pipeline_command, pipeline_env

pytestmark = pytest.mark.slow


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
