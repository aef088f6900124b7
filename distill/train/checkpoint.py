"""Resumable checkpoints: the student (safetensors / save_pretrained), optimiser and schedule
state (`torch.save` of plain tensors, read back with `weights_only=True`), and where the run
was. Written to a temporary directory and renamed, so a kill never leaves a half checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from distill.students import load_student

LAST = "checkpoint-last"
STATE_NAME = "trainer_state.json"
OPTIM_NAME = "optimizer.pt"


def save_checkpoint(run_dir: Path, student, extra: dict[str, Any], state: dict[str, Any]) -> Path:
    """`extra`: the engine's optimizer, schedule and RNG states; `state`: where the run is."""
    final = run_dir / LAST
    tmp = run_dir / f"{LAST}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    student.save(tmp)
    torch.save(extra, tmp / OPTIM_NAME)
    (tmp / STATE_NAME).write_text(json.dumps(state, indent=2))
    _swap_in(tmp, final)
    return final


def save_student_atomic(student, directory: Path) -> None:
    """The student saved beside `directory`, then swapped in: a kill leaves the old one whole."""
    tmp = directory.with_name(f"{directory.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    student.save(tmp)
    _swap_in(tmp, directory)


def _swap_in(tmp: Path, final: Path) -> None:
    """Rename `tmp` to `final`, keeping the old `final` as `.old` until the new one is in place."""
    old = final.with_name(f"{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def read_state(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / LAST / STATE_NAME
    if not path.exists():
        old = run_dir / f"{LAST}.old" / STATE_NAME  # killed between the two renames
        path = old if old.exists() else path
    return json.loads(path.read_text()) if path.exists() else None


def load_checkpoint(run_dir: Path):
    directory = run_dir / LAST if (run_dir / LAST).exists() else run_dir / f"{LAST}.old"
    student = load_student(directory)
    extra = torch.load(directory / OPTIM_NAME, weights_only=True)
    return student, extra
