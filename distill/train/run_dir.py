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
# What a run writes; --overwrite removes exactly these, never other files a user keeps there.
RUN_FILES = ("checkpoint-last", "checkpoint-last.tmp", "checkpoint-last.old", "student", "metrics.jsonl",
             RECIPE_NAME, "report.json", "report.md", "curves.png")


class RunMismatchError(RuntimeError):
    """The run directory holds another recipe's or another cache's run (one line)."""


def run_fingerprint(recipe: dict[str, Any], cache_fingerprint: str, online: bool) -> str:
    return fingerprint_json({"recipe": recipe, "cache": cache_fingerprint, "online": online})


def claim_run_dir(run_dir: Path, record: dict[str, Any], overwrite: bool = False) -> bool:
    """Make `run_dir` this run's: True if it already was (resume), False for a fresh start.

    `record` holds `fingerprint` plus what describes the run; it is written to `recipe.json`."""
    path = run_dir / RECIPE_NAME
    found = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    started = found is not None or any((run_dir / name).exists() for name in RUN_FILES)
    same = found is not None and found.get("fingerprint") == record["fingerprint"]
    if started and not same:
        if not overwrite:
            what = "another recipe or cache" if found is not None else "a run this version cannot identify"
            raise RunMismatchError(
                f"{run_dir} holds {what} (run fingerprint {str((found or {}).get('fingerprint'))[:12]} != "
                f"{record['fingerprint'][:12]}); choose another --out or pass --overwrite to start over")
        log.warning("--overwrite: removing the run in %s", run_dir)
        for name in RUN_FILES:
            target = run_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, record)
    return started and same
