"""Which input columns hold what (`Columns`), and the command-line flags that set them."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Literal

from distill.common.config_io import NonEmptyStr, PositiveInt


@dataclass
class Columns:
    """Which input columns hold what. `text_b=None` means a single-sentence task."""

    text_a: NonEmptyStr = "text_a"
    text_b: str | None = None  # None or "": no second sentence
    label: str | None = "label"  # None or "": unlabelled
    id: str | None = None
    label_type: Literal["auto", "int", "float", "str"] = "auto"  # auto: the type the values have
    max_chars: PositiveInt = 10_000  # longer texts are rejected: they are almost always broken rows
    split: NonEmptyStr = "train"  # of a hub dataset or a saved datasets.DatasetDict
    tokens: str | None = None  # a list-of-words column makes a token task (NER shape); text_a/text_b/label unused
    tags: str | None = None  # a token task's same-length tag column (None: unlabelled)
    format: Literal["auto", "conll"] = "auto"  # conll: CoNLL text whatever the suffix


def add_column_flags(parser: argparse.ArgumentParser, text_a: str = "sentence") -> None:
    """The flags every command that reads a labelled input shares (`--text-a` ... `--tags`)."""
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
