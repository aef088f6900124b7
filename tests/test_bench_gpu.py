"""The GPU measurement script (`bench/gpu.py`) in its dry mode on the CPU: every measure runs end to end on
tiny models, so the script is ready whenever a GPU is lent."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def test_gpu_script_dry_run_measures_every_row_against_its_baseline(ray_local, tmp_path, capsys):
    from bench import gpu

    assert gpu.main(["--dry", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "gpu.json").read_text())["rows"]
    assert [r["measure"] for r in rows] == [
        "labelling, float32", "labelling, bfloat16", "TinyBERT augmentation (masked LM + GloVe)",
        "BERT-2 student training, autocast", "one Ray Train worker (gloo), autocast"]
    for row in rows:
        assert row["stage_rows_per_s"] > 0 and row["baseline_rows_per_s"] > 0 and row["ratio"] > 0, row
    assert rows[0]["rows"] > 40  # the sample's 40 sources and their Tang samples
    assert "| labelling, float32 |" in capsys.readouterr().out
    assert not list(tmp_path.glob("runs-*"))  # each run's stages start fresh and are removed after
