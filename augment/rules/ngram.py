"""ngram — Tang et al. 2019 §3.1: with probability p_ng = 0.25 the example is replaced by
a random n-gram of itself, n drawn uniformly from 1..5 (a harsher form of masking)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from augment.rules.registry import register_rule
from distill.common.config_io import ConfigError, PositiveInt, Probability


@register_rule("ngram")
@dataclass
class NgramRule:
    p: Probability = 0.25  # p_ng, Tang et al. 2019 §3.1
    min_n: PositiveInt = 1
    max_n: PositiveInt = 5  # n in {1..5}, Tang et al. 2019 §3.1

    def __post_init__(self) -> None:
        if not 1 <= self.min_n <= self.max_n:
            raise ConfigError(f"{self.min_n!r} is not in 1..max_n ({self.max_n!r})", "min_n")

    def sample(self, tokens: list[str], spaces: list[str], rng: random.Random) -> tuple[list[str], list[str]]:
        """A uniformly placed n-gram; n is capped at the sentence length."""
        n = min(rng.randint(self.min_n, self.max_n), len(tokens))
        start = rng.randrange(len(tokens) - n + 1)
        return tokens[start : start + n], spaces[start : start + n]
