"""Tang et al. 2019 combination of the mask / pos / ngram rules (§3.1).

Per sample: one uniform draw per word chooses mask (u < p_mask), pos (u < p_mask + p_pos)
or keep; then with probability p_ng the sample is cut to an n-gram. This is repeated
n_iter times per example (20 in the paper) and duplicates are dropped.

Sentence pairs follow the reference code (castorini/d-bert): n_iter = 10, and for each
sample, with probability 2/3 one side (chosen 50/50) is augmented, otherwise both.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from augment.rules.mask import MaskRule
from augment.rules.ngram import NgramRule
from augment.rules.pos import PosRule
from augment.words import Words, detokenize
from distill.common.config_io import NonNegativeInt, PositiveInt, Probability

TANG_ORDER = ("mask", "pos", "ngram")


def is_word(token: str) -> bool:
    """Tang's rules act on words; tokens without a letter or digit are punctuation."""
    return any(ch.isalnum() for ch in token)


@dataclass
class TangConfig:
    n_iter: PositiveInt | None = None  # None: 20 for single sentences (Tang §3.1), 10 for pairs (d-bert)
    p_one_side: Probability = 2 / 3  # pairs: probability that only one side is augmented (d-bert)
    # examples with fewer words than this (over all sides) get no samples: SST-2's train file is
    # mostly short sub-phrases, whose samples are near-copies; sentences then get the whole budget
    min_words: NonNegativeInt = 0

    def iterations(self, is_pair: bool) -> int:
        return self.n_iter if self.n_iter is not None else (10 if is_pair else 20)

    def augments(self, tokens: Iterable[str]) -> bool:
        """Whether an example of these tokens (all sides) is long enough for samples (`min_words`)."""
        return not self.min_words or sum(map(is_word, tokens)) >= self.min_words


@dataclass
class TangRules:
    mask: MaskRule | None = None
    pos: PosRule | None = None
    ngram: NgramRule | None = None

    def sample_side(self, words: Words, rng: random.Random) -> tuple[str, set[str]]:
        p_mask = self.mask.p if self.mask else 0.0
        p_swap = p_mask + (self.pos.p if self.pos else 0.0)
        tokens, spaces = list(words.tokens), list(words.spaces)
        applied: set[str] = set()
        for i, word in enumerate(words.tokens):
            if not is_word(word):
                continue  # punctuation is kept: "[MASK]" glued to "funny[MASK]" helps nobody
            draw = rng.random()
            if draw < p_mask:
                tokens[i] = self.mask.replace()
                applied.add("mask")
            elif draw < p_swap:
                tokens[i] = self.pos.replace(word, words.tags[i], rng)
                if tokens[i] != word:
                    applied.add("pos")
            if tokens[i] != word and i > 0 and not spaces[i - 1]:
                spaces[i - 1] = " "  # "do" + "[MASK]" (from "don't") -> "do [MASK]"; other whitespace is kept

        if self.ngram and rng.random() < self.ngram.p:
            cut_tokens, spaces = self.ngram.sample(tokens, spaces, rng)
            if len(cut_tokens) < len(tokens):
                applied.add("ngram")
            tokens = cut_tokens
        return detokenize(tokens, spaces), applied


def tang_samples(sides: list[Words], rules: TangRules, config: TangConfig, rng: random.Random):
    """Yield (texts per side, applied rule names) for each of the n_iter samples."""
    is_pair = len(sides) == 2
    if not config.augments(t for words in sides for t in words.tokens):
        return
    for _ in range(config.iterations(is_pair)):
        chosen = range(len(sides))
        if is_pair and rng.random() < config.p_one_side:
            chosen = (0,) if rng.random() < 0.5 else (1,)
        texts, applied = [], set()
        for index, words in enumerate(sides):
            if index in chosen:
                text, used = rules.sample_side(words, rng)
                applied |= used
            else:
                text = words.text()
            texts.append(text)
        yield texts, "+".join(name for name in TANG_ORDER if name in applied)
