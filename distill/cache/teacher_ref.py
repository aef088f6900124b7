"""Finding teacher weights for a cache when a student really needs them, and only a verified copy:
`--teacher PATH_OR_NAME` (any copy whose files hash to the recorded fingerprint), else the path
recorded at labelling time; a copy that does not match is refused, never silently used."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from distill.common.models import resolve_model_dir
from distill.errors import UserError
from distill.storage.fingerprint import model_fingerprint

log = logging.getLogger(__name__)


class TeacherRequiredError(UserError, FileNotFoundError):
    """A step needs the teacher's weights and no matching copy was given or found (one line)."""


def _recorded(manifest: dict[str, Any]) -> tuple[str, str]:
    teacher = manifest["teacher"]
    return teacher.get("name") or teacher["model"], teacher["model_files"]


def find_teacher(manifest: dict[str, Any], given: str | None = None) -> Path | None:
    """A local directory holding the cache's teacher: `given` (refused unless its fingerprint
    matches), else the recorded path when it still exists and matches, else None."""
    name, fingerprint = _recorded(manifest)
    if given:
        directory = resolve_model_dir(given)
        found = model_fingerprint(directory)
        if found != fingerprint:
            raise TeacherRequiredError(
                f"--teacher {given}: its files (fingerprint {found[:12]}) are not the teacher this cache was "
                f"labelled with ({name}, fingerprint {fingerprint[:12]}); pass a copy of that teacher")
        return directory
    recorded = Path(manifest["teacher"]["model"])
    if recorded.is_dir() and model_fingerprint(recorded) == fingerprint:
        log.info("using the teacher recorded in the cache at %s (fingerprint matches)", recorded)
        return recorded
    return None


def require_teacher(manifest: dict[str, Any], directory: Path | None, why: str) -> Path:
    """`directory` from `find_teacher`, or a one-line error saying what needs it and how to give it."""
    if directory is not None:
        return directory
    name, fingerprint = _recorded(manifest)
    raise TeacherRequiredError(
        f"{why} needs the teacher's weights, which a cache does not carry: pass --teacher PATH_OR_NAME, "
        f"a copy of {name} (fingerprint {fingerprint[:12]})")
