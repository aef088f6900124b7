"""`python -m augment INPUT OUTPUT [options]`: the augmentation stage from the command line."""

from __future__ import annotations

import argparse
import json
import logging

from augment.config import AugmentConfig, ConfigError
from augment.rules import UnknownRuleError
from augment.stage import run
from distill.storage.lock import OutputLockedError
from distill.storage.stage_dir import StageMismatchError
from distill.common.text_inputs import InputError
from distill.common.interrupt import run_entry_point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m augment", description=__doc__)
    parser.add_argument("input", help="csv, tsv, jsonl, parquet, CoNLL file, a datasets directory, or a hub dataset "
                                      "(glue/sst2, hf://owner/name:config)")
    parser.add_argument("--split", help="split of a hub dataset or a saved DatasetDict (default train)")
    parser.add_argument("output", help="output directory for part-* shards and _manifest.json")
    parser.add_argument("--recipe", help="YAML recipe (see pipelines/recipes/)")
    parser.add_argument("--rules", help="comma-separated rules, e.g. mask,pos,ngram or mlm,glove (token tasks: mask,pos,mention)")
    parser.add_argument("--text-a", dest="text_a", help="column of the (first) sentence")
    parser.add_argument("--text-b", dest="text_b", help="column of the second sentence of a pair")
    parser.add_argument("--label", help="gold label column ('' for none)")
    parser.add_argument("--id", dest="id_column", help="column with a unique example id")
    parser.add_argument("--tokens", help="token task (NER shape): column with the list of words (implied for CoNLL)")
    parser.add_argument("--tags", help="token task: column with one tag per word ('' for none)")
    parser.add_argument("--mlm-model", help="masked LM for the mlm rule (hub name or directory)")
    parser.add_argument("--glove", help="GloVe-format text file for the glove rule")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--workers", type=int, help="Ray actors per pass (default: all CPUs)")
    parser.add_argument("--address", help="Ray cluster: 'auto' or ray://host:port (default: embedded local Ray)")
    parser.add_argument("--overwrite", action="store_true", help="replace output of a different config")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key, e.g. --set tang.n_iter=5 (repeatable)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    return parser


def overrides_from_args(args: argparse.Namespace) -> list[str]:
    """Flags are shorthands for `--set`; explicit `--set` values come last and win.

    Names and paths are JSON-quoted so YAML keeps them strings (a column called `yes` or `1`).
    """
    out = []
    if args.rules:
        out.append(f"rules={json.dumps(args.rules.split(','))}")
    for flag, key in (("text_a", "columns.text_a"), ("text_b", "columns.text_b"), ("label", "columns.label"),
                      ("id_column", "columns.id"), ("split", "columns.split"), ("tokens", "columns.tokens"),
                      ("tags", "columns.tags"), ("mlm_model", "rules.mlm.model"), ("glove", "rules.glove.path")):
        value = getattr(args, flag)
        if value is not None:
            out.append(f"{key}={json.dumps(value) if value != '' else 'null'}")
    for flag in ("seed", "workers"):
        if getattr(args, flag) is not None:
            out.append(f"{flag}={getattr(args, flag)}")
    return out + args.overrides


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    def body() -> int:
        config = AugmentConfig.load(args.recipe, overrides_from_args(args))
        print(run(args.input, args.output, config, address=args.address, overwrite=args.overwrite).summary())
        return 0

    return run_entry_point(body, (ConfigError, UnknownRuleError, InputError, OutputLockedError, StageMismatchError,
                                  FileNotFoundError))
