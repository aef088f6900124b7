"""TinyBERT combination of the mlm / glove rules (Jiao et al. 2020, Algorithm 1): a replaceable word
(letters only, not one of spaCy's stop words) that is a single wordpiece gets masked-LM candidates, any
other GloVe neighbours; then N samples per example (20 for SST-2), each word replaced with probability
p_t = 0.4 by a random candidate, duplicates dropped. Both sides of a pair are augmented together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from augment.rules.glove import GloveRule
from augment.rules.mlm import MlmRule
from augment.words import Words, detokenize
from distill.common.config_io import PositiveInt, Probability

TINYBERT_ORDER = ("mlm", "glove")
Candidates = list[list[tuple[str, str]]]  # per word: [(candidate, source rule)]


@dataclass
class TinyBertConfig:
    n_aug: PositiveInt = 20  # N, TinyBERT reference for SST-2/QNLI (MNLI/QQP 10, CoLA/MRPC/RTE/STS-B 30)
    p: Probability = 0.4  # p_t, TinyBERT reference release


@cache
def stop_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS  # imported lazily: `import spacy` costs ~2 s per worker

    return frozenset(STOP_WORDS)


def replaceable(word: str) -> bool:
    return word.isalpha() and word.lower() not in stop_words()


@dataclass
class TinyBertRules:
    mlm: MlmRule | None = None
    glove: GloveRule | None = None

    def candidates(self, all_sides: list[list[Words]]) -> list[list[Candidates]]:
        """Candidates for every word of every side of every example, batched over all of them."""
        queries, slots, glove_slots = [], [], []
        for e, sides in enumerate(all_sides):
            for s, words in enumerate(sides):
                for w, word in enumerate(words.tokens):
                    if not replaceable(word):
                        continue
                    if self.mlm and self.mlm.is_single_piece(word):
                        queries.append((words, w))
                        slots.append((e, s, w))
                    elif self.glove:
                        glove_slots.append((e, s, w, word))
        result = [[[[] for _ in words.tokens] for words in sides] for sides in all_sides]
        if self.mlm:
            for (e, s, w), found in zip(slots, self.mlm.candidates(queries)):
                result[e][s][w] = [(c, "mlm") for c in found]
        if self.glove:
            found = self.glove.neighbours([slot[3] for slot in glove_slots])
            for e, s, w, word in glove_slots:
                result[e][s][w] = [(c, "glove") for c in found[word]]
        return result


def tinybert_samples(sides: list[Words], candidates: list[Candidates], config: TinyBertConfig, rng: random.Random):
    """Yield (texts per side, applied rule names) for each of the N samples."""
    for _ in range(config.n_aug):
        texts, applied = [], set()
        for words, side_candidates in zip(sides, candidates):
            tokens = list(words.tokens)
            for i, options in enumerate(side_candidates):
                if options and rng.random() < config.p:
                    tokens[i], source = options[rng.randrange(len(options))]
                    applied.add(source)
            texts.append(detokenize(tokens, words.spaces))
        yield texts, "+".join(name for name in TINYBERT_ORDER if name in applied)
