"""Typed configuration of the corpus stage (dataclass <- YAML <- `key=value` overrides).

Defaults follow BERT pre-training at sequence length 128 (15 % of positions, at most 20, 80/10/10),
with K = 2 statically masked copies per sequence as DistilBERT-style offline distillation inputs.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import PlainValidator

from distill.common.config_io import (
    ConfigError, NonEmptyStr, NonNegativeInt, PositiveInt, Probability, Seed, YamlConfig,
)

AUTO_SHARDS = 32  # docs_per_shard auto: about this many shards per input, enough for 32 workers
MAX_AUTO_SHARD_DOCS = 1000  # ... and never more documents than this per shard
MIN_MAX_LENGTH = 8  # [CLS] A [SEP] B [SEP] needs room for a few pieces per segment
SCHEDULING = ("workers",)  # options that never change the output (left out of `resolved`)
NOT_OUTPUT = ("tokenizer", "trust_remote_code")  # identified by the vocabulary fingerprint instead



def _docs_per_shard(value: Any) -> int | str:
    """A positive integer or "auto", checked in one piece so the error names just the key (a plain
    `PositiveInt | Literal["auto"]` union reports pydantic's member tag in the key path)."""
    if value == "auto" and isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("is not a positive integer or 'auto'")
    if value < 1:
        raise ValueError("must be >= 1")
    return value


DocsPerShard = Annotated[int | Literal["auto"], PlainValidator(_docs_per_shard)]


@dataclass
class CorpusConfig(YamlConfig):
    tokenizer: NonEmptyStr | None = None  # directory or hub name; required at run time
    text_column: NonEmptyStr = "text"  # jsonl field / parquet or datasets column
    documents: Literal["line", "blank_line"] = "line"  # txt: one document per line, or blank-line separated
    split: NonEmptyStr = "train"  # split of a saved DatasetDict or a hub dataset
    hub_config: NonEmptyStr | None = None  # configuration name of a hub dataset
    max_length: PositiveInt = 128  # wordpieces per sequence, specials included
    packing: Literal["pair", "plain"] = "pair"  # pair: [CLS] A [SEP] B [SEP] at sentence boundaries
    min_tokens: PositiveInt = 8  # shorter sequences (non-special pieces) are dropped and counted
    copies: NonNegativeInt = 2  # differently masked copies per sequence; 0 = one unmasked copy
    mask_probability: Probability = 0.15
    mask_token_ratio: Probability = 0.8  # of the chosen positions: [MASK]
    random_token_ratio: Probability = 0.1  # ... a random non-special token; the rest keep theirs
    max_predictions: PositiveInt = 20  # BERT's max_predictions_per_seq for length 128
    docs_per_shard: DocsPerShard = "auto"  # auto: ceil(documents / 32), 1..1000
    workers: PositiveInt | None = None  # Ray actors; None = as many as the cluster's CPUs
    seed: Seed = 0
    trust_remote_code: bool = False  # only for tokenizers whose code you trust

    def __post_init__(self) -> None:
        if isinstance(self.tokenizer, os.PathLike):  # a Path given in Python: kept as its string
            self.tokenizer = os.fspath(self.tokenizer)
        for name, allowed in (("documents", ("line", "blank_line")), ("packing", ("pair", "plain"))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{getattr(self, name)!r} is not allowed (choose {', '.join(allowed)})", name)
        for name in ("max_length", "min_tokens", "max_predictions"):
            _check_int(self, name, lowest=1)
        _check_int(self, "copies", lowest=0)
        _check_int(self, "seed", lowest=0)
        if self.seed >= 2**32:
            raise ConfigError(f"{self.seed!r} must be < 2**32", "seed")
        if self.workers is not None:
            _check_int(self, "workers", lowest=1)
        try:
            _docs_per_shard(self.docs_per_shard)
        except ValueError as err:
            raise ConfigError(f"{self.docs_per_shard!r} {err}", "docs_per_shard") from None
        if self.max_length < MIN_MAX_LENGTH:
            raise ConfigError(f"{self.max_length!r} must be >= {MIN_MAX_LENGTH}", "max_length")
        if self.min_tokens > self.max_length - 2:
            raise ConfigError(f"{self.min_tokens!r} must be <= max_length - 2 ({self.max_length - 2}): "
                              "no sequence could be kept", "min_tokens")
        for name in ("mask_probability", "mask_token_ratio", "random_token_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ConfigError(f"{value!r} must be a number in [0, 1]", name)
        if self.mask_token_ratio + self.random_token_ratio > 1 + 1e-12:
            raise ConfigError(f"{self.random_token_ratio!r}: mask_token_ratio + random_token_ratio = "
                              f"{self.mask_token_ratio + self.random_token_ratio:g} must be <= 1", "random_token_ratio")
        for name in ("tokenizer", "hub_config"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"{value!r} must be a non-empty string or null", name)

    @property
    def is_pair(self) -> bool:
        return self.packing == "pair"

    def shard_docs(self, documents: int) -> int:
        """Documents per shard for an input of `documents` documents: a function of the input alone
        (never of the worker count), so the output is the same on any cluster."""
        if self.docs_per_shard != "auto":
            return self.docs_per_shard
        return max(1, min(MAX_AUTO_SHARD_DOCS, math.ceil(documents / AUTO_SHARDS)))

    def resolved(self) -> dict[str, Any]:
        """The options that change the output, defaults filled in: manifest and fingerprint.

        `workers` only schedules; the tokenizer's name and `trust_remote_code` are not hashed
        either, as the vocabulary fingerprint identifies the tokenizer whatever its path."""
        data = dataclasses.asdict(self)
        for key in SCHEDULING + NOT_OUTPUT:
            data.pop(key)
        return data


def _check_int(config: CorpusConfig, name: str, lowest: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{value!r} is not an integer", name)
    if value < lowest:
        raise ConfigError(f"{value!r} must be >= {lowest}", name)
