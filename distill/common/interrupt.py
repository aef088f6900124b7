"""What a stopped run says: every stage commits atomically, so Ctrl-C loses at most the shards in
flight, and the same command resumes (the entry points print this and exit 130, as shells expect)."""

INTERRUPTED = "interrupted; rerun the same command to resume (finished shards and checkpoints are kept)"


def run_entry_point(body, expected: tuple[type[BaseException], ...]) -> int:
    """Run a command's `body()` as the entry points do: its exit code; a one-line `error:` and 2 for
    an expected error (bad config, input, lock, ...); the resume hint and 130 for Ctrl-C."""
    import sys

    try:
        return body()
    except expected as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
