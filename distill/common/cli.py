"""What every command line shares: flags that stand for `--set KEY=VALUE`, the `--set` flag, logging, and
how a run ends. Every stage commits atomically, so Ctrl-C loses at most the shards in flight and the same
command resumes: the entry points say so and exit 130, as shells expect."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from distill.errors import UserError

INTERRUPTED = "interrupted; rerun the same command to resume (finished shards and checkpoints are kept)"
Shorthand = tuple[str, str, type, "str | None"]  # flag, the config key it sets, its type, help
COLUMN_SHORTHANDS: tuple[Shorthand, ...] = (  # the `Columns` section of a stage that reads labelled input
    ("--split", "columns.split", str, "split of a hub dataset or a saved DatasetDict (default train)"),
    ("--text-a", "columns.text_a", str, "column of the (first) sentence"),
    ("--text-b", "columns.text_b", str, "column of the second sentence of a pair"),
    ("--label", "columns.label", str, "gold label column ('' for none)"),
    ("--tokens", "columns.tokens", str, "token task (NER shape): column with the list of words (implied for CoNLL)"),
    ("--tags", "columns.tags", str, "token task: column with one tag per word ('' for none)"),
)


def add_shorthands(parser: argparse.ArgumentParser, shorthands: Sequence[Shorthand], prefix: str = "") -> None:
    """Flags that set `prefix + key`; `shorthand_overrides` turns the given ones into `--set` items."""
    for flag, key, kind, text in shorthands:
        parser.add_argument(flag, dest=prefix + key, metavar=flag[2:].upper(), type=kind, help=text)


def shorthand_overrides(args: argparse.Namespace, shorthands: Sequence[Shorthand], prefix: str = "") -> list[str]:
    """The shorthands given, as `--set` items (explicit `--set` items come after them and win). Strings are
    JSON-quoted so YAML keeps them strings (a column called `yes` or `1`); '' means none."""
    given = ((prefix + key, getattr(args, prefix + key)) for _, key, _, _ in shorthands)
    return [f"{key}={json.dumps(value) if value != '' else 'null'}" for key, value in given if value is not None]


def add_set_flag(parser: argparse.ArgumentParser, example: str) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config key, e.g. {example} (repeatable)")


def run_entry_point(body, expected: tuple[type[BaseException], ...] = (),
                    explain: Callable[[Exception], str | None] | None = None, quiet: bool = False) -> int:
    """Run a command's `body()` as the entry points do, logging to stderr (warnings only when `quiet`):
    its exit code; a one-line `error:` and 2 for a `UserError` (bad config, input, lock, ...), another
    `expected` error, or one `explain` recognises (a full disk); the resume hint and 130 for Ctrl-C.
    Anything else propagates with its traceback."""
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return body()
    except (UserError, FileNotFoundError, *expected) as err:
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
