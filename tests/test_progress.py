"""Progress off a terminal: periodic one-line log records, never carriage returns."""

from __future__ import annotations

import logging
import re

import pytest

from distill.common.progress import LineProgress


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


def _stderr_of(code: str) -> str:
    """What `code` writes to stderr when stderr is a pipe, as in a batch job, Docker logs or CI."""
    import subprocess
    import sys

    from tests.conftest import REPO

    prelude = "import logging, sys\nlogging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')\n"
    done = subprocess.run([sys.executable, "-c", prelude + code], cwd=REPO, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300, check=True)
    assert "\r" not in done.stderr  # no tqdm bar
    return done.stderr


def test_off_a_terminal_the_bar_prints_whole_lines():
    stderr = _stderr_of("from distill.common.progress import progress_bar\n"
                        "bar = progress_bar(3, 'label', 'shard', every=0.0)\n"
                        "for loss in ('0.9', '0.5', '0.1'):\n"
                        "    bar.set_postfix(loss=loss)\n    bar.update()\nbar.close()\n")
    lines = stderr.splitlines()
    assert [re.sub(r"[\d.]+ shard/s", "R shard/s", line) for line in lines] == [
        "distill.progress: label: 1/3 shard (33 %), R shard/s, loss=0.9",
        "distill.progress: label: 2/3 shard (67 %), R shard/s, loss=0.5",
        "distill.progress: label: 3/3 shard (100 %), R shard/s, loss=0.1"]


@pytest.mark.slow
def test_a_training_run_off_a_terminal_prints_its_progress_lines():
    """The training engine's progress: a line at the end of the phase with the logged loss."""
    stderr = _stderr_of("""
import torch
from distill.train.engine import Engine, Phase, Recipe, Settings

class Line(Recipe):
    model = torch.nn.Linear(2, 1)

    def batches(self, phase, epoch, start):
        return [torch.ones(3, 2)] * (phase.total - start)

    def loss(self, batch):
        return self.model(batch).pow(2).mean(), {}

Engine(Line(), Settings(log_every=1)).fit([Phase("train", 4, 4, 0.1, 0, 0.0)])
""")
    lines = [line for line in stderr.splitlines() if line.startswith("distill.progress")]
    assert len(lines) == 1 and re.fullmatch(
        r"distill\.progress: train: 4/4 step \(100 %\), [\d.]+ step/s, loss=\d+\.\d{4}", lines[0]), stderr
