"""`python -m distill.corpus --input FILE --output DIR --tokenizer DIR`: the corpus stage from the command line."""

from __future__ import annotations

import argparse

from distill.common.cli import add_set_flag, add_shorthands, run_entry_point, shorthand_overrides
from distill.corpus.config import CorpusConfig
from distill.corpus.stage import run

SHORTHANDS = (("--tokenizer", "tokenizer", str, "tokenizer directory or hub name (the teacher's)"),)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m distill.corpus", description=__doc__)
    parser.add_argument("--input", required=True,
                        help="txt, jsonl or parquet file, a datasets save_to_disk folder, or a hub dataset name")
    parser.add_argument("--output", required=True, help="output directory for part-*.arrow shards and _manifest.json")
    add_shorthands(parser, SHORTHANDS)
    parser.add_argument("--config", help="YAML file of corpus options")
    add_set_flag(parser, "--set packing=plain")
    parser.add_argument("--address", help="Ray cluster, from one of its nodes: 'auto' or the head's HOST:PORT (default: embedded local Ray)")
    parser.add_argument("--overwrite", action="store_true", help="replace output of a different input or config")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = shorthand_overrides(args, SHORTHANDS) + args.overrides

    def body() -> int:
        config = CorpusConfig.load(args.config, overrides)
        print(run(args.input, args.output, config, overwrite=args.overwrite, address=args.address).summary())
        return 0

    return run_entry_point(body, quiet=args.quiet)
