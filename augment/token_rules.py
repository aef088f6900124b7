"""Tang et al.'s rules and mention replacement on token tasks (NER shape), tags kept aligned.

Per sample, as in `augment.tang`: one uniform draw per replaceable word chooses mask
(u < p_mask), pos (u < p_mask + p_pos) or keep. Only words tagged `O` are replaceable (every word
of an unlabelled sentence is), and punctuation never is, so entity words are never touched and a
word's tag stays its tag. Then the mention rule swaps whole entity spans (`augment.rules.mention`).
The n-gram rule is off for token tasks: cutting a sentence mid-mention breaks its tags.

Determinism: the mask/pos draws use the example's `tang` RNG and the mention draws its own
`mention` RNG (`augment.augmenter.example_rng`), so turning mention replacement on or off leaves
the mask/pos draws unchanged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from augment.rules.mask import MaskRule
from augment.rules.mention import MentionRule, entity_type
from augment.rules.pos import PosRule
from augment.tang import TangConfig, is_word

TOKEN_ORDER = ("mask", "pos", "mention")


def is_outside(tag) -> bool:
    """`O` (or integer id 0, the `O` of CoNLL-style `datasets`), or no gold tags at all."""
    return tag is None or entity_type(tag) is None


@dataclass
class TokenRules:
    mask: MaskRule | None = None
    pos: PosRule | None = None
    mention: MentionRule | None = None

    def sample(
        self, tokens: list[str], tags: list | None, pos_tags: list[str], rng: random.Random, mention_rng: random.Random
    ) -> tuple[list[str], list | None, set[str]]:
        """One augmented (tokens, tags) and the names of the rules that changed something."""
        out, applied = list(tokens), set()
        if self.mask or self.pos:
            p_mask = self.mask.p if self.mask else 0.0
            p_swap = p_mask + (self.pos.p if self.pos else 0.0)
            for i, word in enumerate(tokens):
                if not is_word(word) or not is_outside(tags[i] if tags is not None else None):
                    continue
                draw = rng.random()
                if draw < p_mask:
                    out[i] = self.mask.replace()
                    applied.add("mask")
                elif draw < p_swap:
                    out[i] = self.pos.replace(word, pos_tags[i], rng)
                    if out[i] != word:
                        applied.add("pos")
        out_tags = list(tags) if tags is not None else None
        if self.mention and tags is not None:
            out, out_tags, changed = self.mention.replace(out, out_tags, mention_rng)
            if changed:
                applied.add("mention")
        return out, out_tags, applied


def token_samples(
    tokens: list[str], tags: list | None, pos_tags: list[str], rules: TokenRules, config: TangConfig,
    rng: random.Random, mention_rng: random.Random,
):
    """Yield (tokens, tags, rule name) for each of the n_iter samples (20 by default, Tang §3.1)."""
    if not config.augments(tokens):
        return
    for _ in range(config.iterations(False)):
        out, out_tags, applied = rules.sample(tokens, tags, pos_tags, rng, mention_rng)
        yield out, out_tags, "+".join(name for name in TOKEN_ORDER if name in applied)
