"""Turning an out-of-space failure into one clear line, however deeply Ray wrapped it: an `OSError` (ENOSPC)
from the driver, a `RayTaskError` wrapped again by Ray Data, or a pyarrow `OSError` with the errno only in its
message. Atomic commits left nothing half-written, so the user needs only what, where, and that a rerun resumes.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

NO_SPACE_TEXT = "No space left on device"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen, todo = set(), [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [current.__cause__, current.__context__, getattr(current, "cause", None)]
        todo += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]


def disk_full_message(exc: BaseException, output: str) -> str | None:
    """The one-line report if `exc` is (or wraps) a full filesystem, else None."""
    found = None
    for current in _chain(exc):
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            found = current
            break
        if NO_SPACE_TEXT in str(current):  # pyarrow's errors, Ray's re-raised tracebacks
            found = found or current
    if found is None:
        return None
    where = f" writing {found.filename}" if getattr(found, "filename", None) else ""
    return (f"no space left on device{where} (output {output}); no partial file was kept: "
            "free some space and rerun, finished shards are reused")
