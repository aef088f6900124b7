"""Typed configuration of the corpus stage (dataclass <- YAML <- `key=value` overrides). Defaults follow BERT
pre-training at length 128 (15 %, at most 20, 80/10/10), with 2 statically masked copies per sequence."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import PlainValidator

from distill.common.config_io import (ConfigError, NonEmptyStr, NonNegativeInt, PositiveInt, Probability, Seed,
                                      YamlConfig)
from distill.storage.shards import shard_size

MIN_MAX_LENGTH = 8  # [CLS] A [SEP] B [SEP] needs room for a few pieces per segment
SCHEDULING = ("workers",)  # options that never change the output (left out of `resolved`)
NOT_OUTPUT = ("tokenizer", "trust_remote_code")  # identified by the vocabulary fingerprint instead


def _docs_per_shard(value: Any) -> int | str:
    """A positive integer or "auto", in one piece: a pydantic union would put its member tag in the key path."""
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
        super().__post_init__()
        if self.max_length < MIN_MAX_LENGTH:
            raise ConfigError(f"{self.max_length!r} must be >= {MIN_MAX_LENGTH}", "max_length")
        if self.min_tokens > self.max_length - 2:
            raise ConfigError(f"{self.min_tokens!r} must be <= max_length - 2 ({self.max_length - 2}): "
                              "no sequence could be kept", "min_tokens")
        if self.mask_token_ratio + self.random_token_ratio > 1 + 1e-12:
            raise ConfigError(f"{self.random_token_ratio!r}: mask_token_ratio + random_token_ratio = "
                              f"{self.mask_token_ratio + self.random_token_ratio:g} must be <= 1", "random_token_ratio")

    @property
    def is_pair(self) -> bool:
        return self.packing == "pair"

    def shard_docs(self, documents: int) -> int:
        return shard_size(self.docs_per_shard, documents)

    def resolved(self) -> dict[str, Any]:
        """The options that change the output, defaults filled in: manifest and fingerprint."""
        data = dataclasses.asdict(self)
        for key in SCHEDULING + NOT_OUTPUT:
            data.pop(key)
        return data

