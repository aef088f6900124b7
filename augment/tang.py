"""Tang et al. 2019 combination of the mask / pos / ngram rules (§3.1), for text and token rows.

Per sample one uniform draw per word chooses mask, pos or keep, then with probability p_ng the sample is cut
to an n-gram; n_iter samples per example (20; pairs as castorini/d-bert: 10, and with probability 2/3 only one
side is augmented). Token rows: only `O` words are drawn for, and mention swaps whole entity spans instead.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from augment.rules.mask import MaskRule
from augment.rules.mention import MentionRule, entity_type
from augment.rules.ngram import NgramRule
from augment.rules.pos import PosRule
from augment.words import Words, detokenize
from distill.common.config_io import NonNegativeInt, PositiveInt, Probability

TANG_ORDER = ("mask", "pos", "ngram", "mention")  # the order of names in a sample's rule ("mask+pos")


def is_word(token: str) -> bool:
    """Tang's rules act on words; tokens without a letter or digit are punctuation."""
    return any(ch.isalnum() for ch in token)


@dataclass
class TangConfig:
    n_iter: PositiveInt | None = None  # None: 20 for single sentences (Tang §3.1), 10 for pairs (d-bert)
    p_one_side: Probability = 2 / 3  # pairs: probability that only one side is augmented (d-bert)
    min_words: NonNegativeInt = 0  # shorter examples get no samples (SST-2's many sub-phrases: near-copies)
    # rows inside a longer input row (whole words) get no samples: every SST-2 sentence, none of its phrases
    skip_subphrases: bool = False


@dataclass
class TangRules:
    mask: MaskRule | None = None
    pos: PosRule | None = None
    ngram: NgramRule | None = None
    mention: MentionRule | None = None

    def replace_words(self, words: Words, rng: random.Random,
                      fixed: list[bool] | None = None) -> tuple[list[str], set[str]]:
        """One draw per word that is neither punctuation nor `fixed`: mask, pos or keep."""
        p_mask = self.mask.p if self.mask else 0.0
        p_swap = p_mask + (self.pos.p if self.pos else 0.0)
        tokens, applied = list(words.tokens), set()
        for i, word in enumerate(words.tokens):
            if not is_word(word) or (fixed is not None and fixed[i]):
                continue  # punctuation is kept: "[MASK]" glued to "funny[MASK]" helps nobody
            draw = rng.random()
            if draw < p_mask:
                tokens[i] = self.mask.token
                applied.add("mask")
            elif draw < p_swap:
                tokens[i] = self.pos.replace(word, words.tags[i], rng)
                if tokens[i] != word:
                    applied.add("pos")
        return tokens, applied

    def sample_side(self, words: Words, rng: random.Random) -> tuple[str, set[str]]:
        """One side of a text row: words replaced, then perhaps cut to an n-gram."""
        tokens, applied = self.replace_words(words, rng)
        spaces = list(words.spaces)
        for i in range(1, len(tokens)):
            if tokens[i] != words.tokens[i] and not spaces[i - 1]:
                spaces[i - 1] = " "  # "do" + "[MASK]" (from "don't") -> "do [MASK]"; other whitespace is kept
        if self.ngram and rng.random() < self.ngram.p:
            cut_tokens, spaces = self.ngram.sample(tokens, spaces, rng)
            if len(cut_tokens) < len(tokens):
                applied.add("ngram")
            tokens = cut_tokens
        return detokenize(tokens, spaces), applied

    def sample_sides(self, sides: list[Words], config: TangConfig, rng: random.Random) -> tuple[list[str], set[str]]:
        """A text row's texts: a pair has only one side (chosen 50/50) augmented with p_one_side."""
        chosen = range(len(sides))
        if len(sides) == 2 and rng.random() < config.p_one_side:
            chosen = (0,) if rng.random() < 0.5 else (1,)
        drawn = [self.sample_side(side, rng) if i in chosen else (side.text(), set()) for i, side in enumerate(sides)]
        return [text for text, _ in drawn], set().union(*(used for _, used in drawn))

    def sample_tagged(self, words: Words, tags: list[str] | None, rng: random.Random,
                      mention_rng: random.Random) -> tuple[tuple[list[str], list[str] | None], set[str]]:
        """A token row's (words, tags): `O` words replaced, then mentions swapped."""
        fixed = [entity_type(tag) is not None for tag in tags] if tags is not None else None
        tokens, applied = self.replace_words(words, rng, fixed)
        out_tags = list(tags) if tags is not None else None
        if self.mention and tags is not None:
            tokens, out_tags, changed = self.mention.replace(tokens, out_tags, mention_rng)
            if changed:
                applied.add("mention")
        return (tokens, out_tags), applied


def tang_samples(sides: list[Words], config: TangConfig, sample: Callable[[], tuple[Any, set[str]]]) -> Iterator:
    """Yield (sample, rule name) for each of the n_iter draws of `sample` (none under min_words)."""
    if config.min_words and sum(is_word(t) for words in sides for t in words.tokens) < config.min_words:
        return
    for _ in range(config.n_iter or (10 if len(sides) == 2 else 20)):
        out, applied = sample()
        yield out, "+".join(name for name in TANG_ORDER if name in applied)
