"""`python -m distill.corpus --input FILE --output DIR --tokenizer DIR`: the corpus stage from the command line."""

from __future__ import annotations

import argparse
import json
import logging

from distill.common.config_io import ConfigError
from distill.common.interrupt import run_entry_point
from distill.common.errors import InputError
from distill.corpus.config import CorpusConfig
from distill.corpus.stage import run
from distill.storage.lock import OutputLockedError
from distill.storage.stage_dir import StageMismatchError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m distill.corpus", description=__doc__)
    parser.add_argument("--input", required=True,
                        help="txt, jsonl or parquet file, a datasets save_to_disk folder, or a hub dataset name")
    parser.add_argument("--output", required=True, help="output directory for part-*.arrow shards and _manifest.json")
    parser.add_argument("--tokenizer", help="tokenizer directory or hub name (the teacher's)")
    parser.add_argument("--config", help="YAML file of corpus options")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set packing=plain (repeatable)")
    parser.add_argument("--address", help="Ray cluster: 'auto' or ray://host:port (default: embedded local Ray)")
    parser.add_argument("--overwrite", action="store_true", help="replace output of a different input or config")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # --tokenizer is a shorthand for --set tokenizer=...; JSON-quoted so YAML keeps it a string
    overrides = ([f"tokenizer={json.dumps(args.tokenizer)}"] if args.tokenizer else []) + args.overrides

    def body() -> int:
        config = CorpusConfig.load(args.config, overrides)
        print(run(args.input, args.output, config, overwrite=args.overwrite, address=args.address).summary())
        return 0

    return run_entry_point(body, (ConfigError, InputError, OutputLockedError, StageMismatchError, FileNotFoundError))
