"""`python -m augment INPUT OUTPUT [options]`: the augmentation stage from the command line."""

from __future__ import annotations

import argparse
import json
import logging

from augment.config import AugmentConfig, ConfigError
from augment.rules import UnknownRuleError
from augment.stage import run
from distill.common.errors import InputError
from distill.common.interrupt import run_entry_point
from distill.storage.lock import OutputLockedError
from distill.storage.stage_dir import StageMismatchError

# Flags that are shorthands for `--set KEY=VALUE`: (flag, config key, help).
SHORTHANDS = (
    ("--split", "columns.split", "split of a hub dataset or a saved DatasetDict (default train)"),
    ("--text-a", "columns.text_a", "column of the (first) sentence"),
    ("--text-b", "columns.text_b", "column of the second sentence of a pair"),
    ("--label", "columns.label", "gold label column ('' for none)"),
    ("--id", "columns.id", "column with a unique example id"),
    ("--tokens", "columns.tokens", "token task (NER shape): column with the list of words (implied for CoNLL)"),
    ("--tags", "columns.tags", "token task: column with one tag per word ('' for none)"),
    ("--mlm-model", "rules.mlm.model", "masked LM for the mlm rule (hub name or directory)"),
    ("--glove", "rules.glove.path", "GloVe-format text file for the glove rule"),
    ("--seed", "seed", None),
    ("--workers", "workers", "Ray actors per pass (default: all CPUs)"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m augment", description=__doc__)
    parser.add_argument("input", help="csv, tsv, jsonl, parquet, CoNLL file, a datasets directory, or a hub dataset "
                                      "(glue/sst2, hf://owner/name:config)")
    parser.add_argument("output", help="output directory for part-* shards and _manifest.json")
    parser.add_argument("--recipe", help="YAML recipe (see pipelines/configs/augment/)")
    parser.add_argument("--rules", help="comma-separated rules, e.g. mask,pos,ngram or mlm,glove "
                                        "(token tasks: mask,pos,mention)")
    for flag, key, text in SHORTHANDS:
        parser.add_argument(flag, dest=key, metavar=flag[2:].upper(), type=int if key in ("seed", "workers") else str,
                            help=text)
    parser.add_argument("--address", help="Ray cluster: 'auto' or ray://host:port (default: embedded local Ray)")
    parser.add_argument("--overwrite", action="store_true", help="replace output of a different config")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key, e.g. --set tang.n_iter=5 (repeatable)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    return parser


def overrides_from_args(args: argparse.Namespace) -> list[str]:
    """Flags as `--set` overrides; explicit `--set` values come last and win. Names and paths are JSON-quoted
    so YAML keeps them strings (a column called `yes` or `1`)."""
    out = [f"rules={json.dumps(args.rules.split(','))}"] if args.rules else []
    given = ((key, getattr(args, key)) for _, key, _ in SHORTHANDS)
    out += [f"{key}={json.dumps(value) if value != '' else 'null'}" for key, value in given if value is not None]
    return out + args.overrides


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def body() -> int:
        config = AugmentConfig.load(args.recipe, overrides_from_args(args))
        print(run(args.input, args.output, config, address=args.address, overwrite=args.overwrite).summary())
        return 0

    return run_entry_point(body, (ConfigError, UnknownRuleError, InputError, OutputLockedError, StageMismatchError,
                                  FileNotFoundError))
