"""Progress off a terminal: periodic one-line log records, never carriage returns."""

from __future__ import annotations

import logging

from distill.common.progress import LineProgress, progress_bar


def test_line_progress_logs_whole_lines_at_intervals_and_at_the_end(caplog, monkeypatch):
    clock = iter([0.0, 1.0, 2.0, 40.0, 41.0, 90.0])
    monkeypatch.setattr("distill.common.progress.time.monotonic", lambda: next(clock))
    progress = LineProgress(total=10, desc="train", unit="step", every=30.0)  # started at t = 0
    with caplog.at_level(logging.INFO, logger="distill.progress"):
        progress.update()  # t = 1: too soon
        progress.set_postfix(loss="0.5")
        progress.update()  # t = 2: too soon
        progress.update(3)  # t = 40: reported
        progress.update(5)  # t = 41: the last step is always reported
        progress.close()  # nothing new since
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["train: 5/10 step (50 %), 0.1 step/s, loss=0.5", "train: 10/10 step (100 %), 0.2 step/s, loss=0.5"]
    assert not any("\r" in m for m in messages)


def test_off_a_terminal_the_bar_is_a_line_progress():
    # pytest captures stderr, so it is not a terminal here (as in CI, Docker logs and batch jobs)
    assert isinstance(progress_bar(5, "x"), LineProgress)
