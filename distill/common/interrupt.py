"""What a stopped run says: every stage commits atomically, so Ctrl-C loses at most the shards in
flight, and the same command resumes (the entry points print this and exit 130, as shells expect)."""

import sys
from collections.abc import Callable

INTERRUPTED = "interrupted; rerun the same command to resume (finished shards and checkpoints are kept)"


def run_entry_point(body, expected: tuple[type[BaseException], ...],
                    explain: Callable[[Exception], str | None] | None = None) -> int:
    """Run a command's `body()` as the entry points do: its exit code; a one-line `error:` and 2 for
    an expected error (bad config, input, lock, ...) or one `explain` recognises (a full disk); the
    resume hint and 130 for Ctrl-C. Anything else propagates with its traceback."""
    try:
        return body()
    except expected as err:
        return _fail(str(err))
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except Exception as err:
        message = explain(err) if explain is not None else None
        if message is None:
            raise
        return _fail(message)


def _fail(message: str) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return 2
