"""One run directory, one student: a run records what it trains (recipe + cache fingerprint) and
a second run into the same directory either resumes that same run or is refused (else a changed
recipe or cache would silently resume the old run and `recipe.json` describe a student it does not
hold). Checkpoints: the student (safetensors / save_pretrained), optimiser and schedule state
(`torch.save` of plain tensors, read back with `weights_only=True`) and where the run was, written
to a temporary directory and renamed, so a kill never leaves a half checkpoint."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from distill.errors import UserError
from distill.storage.atomic import write_json_atomic
from distill.storage.fingerprint import fingerprint_json
from distill.students import load_student

log = logging.getLogger(__name__)
RECIPE_NAME = "recipe.json"
STUDENT_DIR = "student"
BEST_DIR = "student-best"  # keep_best: the best dev evaluation's student so far
METRICS_NAME = "metrics.jsonl"
TIMING_NAME = "timing.json"  # the training loop's own seconds (a multi-worker run's result reads it)
RAY_DIR = "_ray"  # Ray Train's storage (a multi-worker run)
LAST = "checkpoint-last"
STATE_NAME = "trainer_state.json"
OPTIM_NAME = "optimizer.pt"
# What a run writes; --overwrite removes exactly these, never other files a user keeps there.
RUN_FILES = (*(f"{d}{s}" for d in (LAST, BEST_DIR) for s in ("", ".tmp", ".old")), STUDENT_DIR,
             METRICS_NAME, RECIPE_NAME, "report.json", "report.md", "curves.png", TIMING_NAME, RAY_DIR)


class RunMismatchError(UserError, RuntimeError):
    """The run directory holds another recipe's or another cache's run (one line)."""


def run_record(recipe: dict[str, Any], cache_dir, cache_fingerprint: str, online: bool, workers: int) -> dict[str, Any]:
    """recipe.json: what the run trains, and its fingerprint (of the recipe, the cache and `online`)."""
    fingerprint = fingerprint_json({"recipe": recipe, "cache": cache_fingerprint, "online": online})
    return {"fingerprint": fingerprint, "recipe": recipe, "online": online, "workers": workers,
            "cache": {"path": str(cache_dir), "fingerprint": cache_fingerprint}}


def check_run_dir(run_dir: Path, fingerprint: str, overwrite: bool = False) -> bool:
    """True if `run_dir` holds this run (resume it), False for a fresh start; another run's
    directory is refused unless `overwrite`. Writes nothing, so a refused run leaves it as it was."""
    path = run_dir / RECIPE_NAME
    found = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    started = found is not None or any((run_dir / name).exists() for name in RUN_FILES)
    same = found is not None and found.get("fingerprint") == fingerprint
    if started and not same and not overwrite:
        what = "another recipe or cache" if found is not None else "a run this version cannot identify"
        raise RunMismatchError(
            f"{run_dir} holds {what} (run fingerprint {str((found or {}).get('fingerprint'))[:12]} != "
            f"{fingerprint[:12]}); choose another --out or pass --overwrite to start over")
    return started and same


def start_run_dir(run_dir: Path, record: dict[str, Any], resuming: bool) -> None:
    """Claim `run_dir` once every check has passed: a fresh start first removes what an earlier run
    (one `check_run_dir` allowed to overwrite) left; `record` (with its `fingerprint`) goes to recipe.json."""
    if not resuming:
        for name in RUN_FILES:
            target = run_dir / name
            if target.exists():
                log.warning("--overwrite: removing %s", target)
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / RECIPE_NAME, record)


def _save_atomic(directory: Path, write: Callable[[Path], Any]) -> Path:
    """`write` into `directory`.tmp, then swapped in, the old one kept as `.old` until the new one is in place."""
    tmp, old = directory.with_name(f"{directory.name}.tmp"), directory.with_name(f"{directory.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    shutil.rmtree(old, ignore_errors=True)
    return directory


def save_checkpoint(run_dir: Path, student, extra: dict[str, Any], state: dict[str, Any]) -> Path:
    """`extra`: the engine's optimizer, schedule and RNG states; `state`: where the run is."""
    def write(tmp: Path) -> None:
        student.save(tmp)
        torch.save(extra, tmp / OPTIM_NAME)
        (tmp / STATE_NAME).write_text(json.dumps(state, indent=2))

    return _save_atomic(run_dir / LAST, write)


def save_student_atomic(student, directory: Path) -> None:
    """The student saved beside `directory`, then swapped in: a kill leaves the old one whole."""
    _save_atomic(directory, student.save)


def read_state(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / LAST / STATE_NAME
    if not path.exists():
        old = run_dir / f"{LAST}.old" / STATE_NAME  # killed between the two renames
        path = old if old.exists() else path
    return json.loads(path.read_text()) if path.exists() else None


def load_checkpoint(run_dir: Path):
    directory = run_dir / LAST if (run_dir / LAST).exists() else run_dir / f"{LAST}.old"
    return load_student(directory), torch.load(directory / OPTIM_NAME, weights_only=True)
