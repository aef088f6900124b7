"""`pipelines/augment_and_label.py`: one config for both stages, one-line errors, rerun skips."""

from __future__ import annotations

import pytest

from pipelines.augment_and_label import main
from tests.conftest import SAMPLES, build_tiny_teacher


def _args(out, teacher, *extra):
    return ["--input", str(SAMPLES / "sentiment.csv"), "--output", str(out), "--text-a", "sentence",
            "--teacher", str(teacher), "--set", "augment.rules=[mask]", "--set", "augment.tang.n_iter=2", *extra]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "label.colour=blue"], "unknown config key(s) label.colour"),
        (["--features", "cls,logitz"], "unknown feature(s) logitz"),
        (["--set", "label.hidden_layers=[9]"], "hidden_layers [9] out of range 0..2"),
    ],
)
def test_config_errors_are_one_line_and_write_nothing(tmp_path, tiny_teacher_dir, capsys, extra, message):
    assert main(_args(tmp_path / "out", tiny_teacher_dir, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_teacher_problems_fail_before_augmenting(tmp_path, minilm_dir, capsys):
    assert main(_args(tmp_path / "out", tmp_path / "no-such-teacher")) == 2
    assert "not a local directory" in capsys.readouterr().err
    small = build_tiny_teacher(tmp_path / "small-vocab", minilm_dir, vocab_size=1000)
    assert main(_args(tmp_path / "out", small)) == 2
    assert "not the teacher's tokenizer" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_full_run_prints_a_summary_and_a_rerun_reuses_everything(ray_local, tmp_path, tiny_teacher_dir, capsys):
    out = tmp_path / "out"
    assert main(_args(out, tiny_teacher_dir, "--features", "cls")) == 0
    first = capsys.readouterr().out
    for field in ("rows in           300 read, 0 rejected", "rows out", "teacher cache", "bytes/example", "rows/s wall-clock"):
        assert field in first
    assert main(_args(out, tiny_teacher_dir, "--features", "cls")) == 0
    second = capsys.readouterr().out
    assert "(up to date)" in second and "no forward pass (cache reused)" in second
    from distill.cache import load

    cache = load(out)  # the pipeline output resolves to its latest cache through teacher/LATEST
    assert cache.path.parent == out / "teacher" and str(cache.path) in first
