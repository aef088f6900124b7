"""A real multi-process Ray cluster on loopback (a head and a second worker node, started and
stopped by the `two_node_cluster` fixture): `augment_and_label.py --address` gives the same output
as embedded Ray."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import REPO, pipeline_command, pipeline_env

pytestmark = pytest.mark.slow


def test_cluster_run_equals_the_embedded_run(reference_run, two_node_cluster, tiny_teacher_dir, tmp_path):
    run_args = ["--features", "cls", "--set", "augment.rules=[mask, pos, ngram]", "--set", "augment.tang.n_iter=3",
                "--set", "augment.rows_per_shard=60"]
    out = tmp_path / "cluster"
    result = subprocess.run(pipeline_command(out, tiny_teacher_dir, "--address", two_node_cluster, *run_args),
                            cwd=REPO, capture_output=True, text=True, timeout=300, env=pipeline_env())
    assert result.returncode == 0, result.stderr[-3000:]
    reference = reference_run(tiny_teacher_dir, *run_args)  # the same job on the embedded (test-session) Ray

    def shards(manifest_path):
        return [(s["file"], s["sha256"]) for s in json.loads(manifest_path.read_text())["shards"]]

    assert shards(out / "augmented" / "_manifest.json") == shards(reference / "augmented" / "_manifest.json")
    cache = next(reference.glob("teacher/*/_manifest.json")).parent
    assert shards(out / "teacher" / cache.name / "_manifest.json") == shards(cache / "_manifest.json")
