"""One writer per output directory (docs/design.md, "One writer"): an exclusive-create lock file naming host
and pid (local disks and NFS alike). The lock of a dead pid on this host is taken over, so a rerun after
`kill -9` resumes; a live holder, or one on another host, makes the run exit."""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path

from distill.errors import UserError

LOCK_NAME = "_lock"
log = logging.getLogger(__name__)


class OutputLockedError(UserError, RuntimeError):
    pass


class OutputPathError(UserError, ValueError):
    """An output directory that cannot be one: a file, or a symbolic link to nothing."""


def check_output_dir(directory: Path) -> None:
    """Refuse, in one line, an output path that is (or lies under) a file, or a link to a missing target."""
    for path in (directory, *directory.parents):
        if path.is_symlink() and not path.exists():
            raise OutputPathError(f"{path} is a symbolic link to {os.readlink(path)}, which does not exist; "
                                  "remove the link or choose another output directory")
        if path.exists():
            if not path.is_dir():
                raise OutputPathError(f"{path} is a file, not a directory; choose another output directory")
            return


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputLock:
    """Context manager holding `<directory>/_lock` for the lifetime of a stage, training or fine-tuning run."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self.owner = {"host": socket.gethostname(), "pid": os.getpid()}

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            json.dump(self.owner, handle)
        return True

    def acquire(self) -> None:
        check_output_dir(self.directory)
        self.created = not self.directory.exists()  # a refused run leaves no empty directory behind
        self.directory.mkdir(parents=True, exist_ok=True)
        for attempt in range(2):
            if self._try_create():
                return
            try:
                holder = json.loads(self.path.read_text())
            except (OSError, ValueError):
                holder = {}
            host, pid = holder.get("host"), holder.get("pid")
            if attempt or host != self.owner["host"] or not isinstance(pid, int) or _pid_alive(pid):
                break
            log.warning("taking over stale lock %s left by dead pid %s", self.path, pid)
            self.path.unlink(missing_ok=True)
        raise OutputLockedError(f"{self.directory} is locked by {host}/{pid} (another run is writing there; "
                                f"if that run is gone, delete {self.path})")

    def release(self) -> None:
        self.path.unlink(missing_ok=True)
        if self.created and not any(self.directory.iterdir()):
            self.directory.rmdir()

    def __enter__(self) -> "OutputLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
