"""One run directory, one student: a run records what it trains (recipe + cache fingerprint) and
a second run into the same directory either resumes that same run or is refused.

Without this a changed recipe or cache would silently resume (or, finished, skip) the old run and
rewrite `recipe.json` to describe a student the directory does not hold.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from distill.storage.atomic import write_json_atomic
from distill.storage.fingerprint import fingerprint_json

log = logging.getLogger(__name__)
RECIPE_NAME = "recipe.json"
STUDENT_DIR = "student"
BEST_DIR = "student-best"  # keep_best: the best dev evaluation's student so far
METRICS_NAME = "metrics.jsonl"
TIMING_NAME = "timing.json"  # the training loop's own seconds (a multi-worker run's result reads it)
RAY_DIR = "_ray"  # Ray Train's storage (a multi-worker run)
# What a run writes; --overwrite removes exactly these, never other files a user keeps there.
RUN_FILES = (*(f"{d}{s}" for d in ("checkpoint-last", BEST_DIR) for s in ("", ".tmp", ".old")), STUDENT_DIR,
             METRICS_NAME, RECIPE_NAME, "report.json", "report.md", "curves.png", TIMING_NAME, RAY_DIR)


class RunMismatchError(RuntimeError):
    """The run directory holds another recipe's or another cache's run (one line)."""


def run_fingerprint(recipe: dict[str, Any], cache_fingerprint: str, online: bool) -> str:
    return fingerprint_json({"recipe": recipe, "cache": cache_fingerprint, "online": online})


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
