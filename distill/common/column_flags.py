"""The column flags every command that reads a labelled input shares (`--text-a` ... `--tags`)."""

from __future__ import annotations

import argparse

from distill.common.text_inputs import Columns


def add_column_flags(parser: argparse.ArgumentParser, text_a: str = "sentence") -> None:
    parser.add_argument("--text-a", default=text_a, help=f"column of the (first) sentence (default {text_a})")
    parser.add_argument("--text-b", help="column of the second sentence of a pair")
    parser.add_argument("--label", default="label", help="gold label column (default label)")
    parser.add_argument("--tokens", help="token tasks: the list-of-words column (default tokens; CoNLL needs none)")
    parser.add_argument("--tags", help="token tasks: the list-of-tags column (default tags)")


def columns_from_flags(args: argparse.Namespace, split: str | None = None) -> Columns:
    """The flags as `Columns` (a token task's `label` is unused)."""
    extra = {"split": split} if split else {}
    return Columns(text_a=args.text_a, text_b=args.text_b, label=None if args.tokens else args.label,
                   tokens=args.tokens, tags=args.tags or ("tags" if args.tokens else None), **extra)
