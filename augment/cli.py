"""`python -m augment INPUT OUTPUT [options]`: the augmentation stage from the command line."""

from __future__ import annotations

import argparse
import json

from augment.config import AugmentConfig
from augment.stage import run
from distill.common.cli import COLUMN_SHORTHANDS, add_set_flag, add_shorthands, run_entry_point, shorthand_overrides

SHORTHANDS = (*COLUMN_SHORTHANDS,
              ("--id", "columns.id", str, "column with a unique example id"),
              ("--mlm-model", "rules.mlm.model", str, "masked LM for the mlm rule (hub name or directory)"),
              ("--glove", "rules.glove.path", str, "GloVe-format text file for the glove rule"),
              ("--seed", "seed", int, None),
              ("--workers", "workers", int, "Ray actors per pass (default: all CPUs)"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m augment", description=__doc__)
    parser.add_argument("input", help="csv, tsv, jsonl, parquet, CoNLL file, a datasets directory, or a hub dataset "
                                      "(glue/sst2, hf://owner/name:config)")
    parser.add_argument("output", help="output directory for part-* shards and _manifest.json")
    parser.add_argument("--recipe", help="YAML recipe (see pipelines/configs/augment/)")
    parser.add_argument("--rules", help="comma-separated rules, e.g. mask,pos,ngram or mlm,glove "
                                        "(token tasks: mask,pos,mention)")
    add_shorthands(parser, SHORTHANDS)
    parser.add_argument("--address", help="Ray cluster, from one of its nodes: 'auto' or the head's HOST:PORT (default: embedded local Ray)")
    parser.add_argument("--overwrite", action="store_true", help="replace output of a different config")
    add_set_flag(parser, "--set tang.n_iter=5")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    return parser


def overrides_from_args(args: argparse.Namespace) -> list[str]:
    """Flags as `--set` overrides; explicit `--set` values come last and win."""
    rules = [f"rules={json.dumps(args.rules.split(','))}"] if args.rules else []
    return rules + shorthand_overrides(args, SHORTHANDS) + args.overrides


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        config = AugmentConfig.load(args.recipe, overrides_from_args(args))
        print(run(args.input, args.output, config, address=args.address, overwrite=args.overwrite).summary())
        return 0

    return run_entry_point(body, quiet=args.quiet)
