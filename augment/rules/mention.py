"""mention — mention replacement (Dai & Adel 2020, "An Analysis of Simple Data Augmentation for
Named Entity Recognition", §2): each entity mention of a sentence is, with probability p, replaced
by another mention of the same entity type drawn from the training corpus; its tags are rewritten
B-X, I-X, ... for the new length. Token tasks only.

Spans are read as BIO (IOB2) or IOB1: a mention starts at `B-X`, or at `I-X` not continuing an X
mention. Replacements are drawn proportionally to how often each mention occurs in the corpus
(as the pos rule draws words), never the mention itself. The pool is a global statistic of the
whole input, sorted, so the draw does not depend on sharding.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from itertools import accumulate
from typing import ClassVar, Iterable

from augment.rules.registry import register_rule
from distill.common.config_io import Probability

Span = tuple[int, int, str]  # [start, end) word indices and the entity type
_RETRIES = 8  # draws before giving up on finding a different mention of that type


def entity_type(tag) -> tuple[str, str] | None:
    """(prefix, type) of an entity tag ("B-PER" -> ("B", "PER")), None for O (or int tag 0)."""
    if tag == "O" or tag == 0 or not isinstance(tag, str):
        return None
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BIES":
        return tag[0], tag[2:]
    return "I", tag  # IO scheme: a bare type continues the mention before it


def mention_spans(tags: list) -> list[Span]:
    """Entity spans of a tag sequence (BIO / IOB1 / IOBES), in order."""
    spans: list[Span] = []
    start, kind = None, None
    for i, tag in enumerate(tags):
        parsed = entity_type(tag)
        prefix, this = parsed if parsed else (None, None)
        continues = parsed is not None and this == kind and prefix in ("I", "E")
        if start is not None and not continues:
            spans.append((start, i, kind))
            start, kind = None, None
        if parsed is not None and start is None:
            start, kind = i, this
        if prefix in ("E", "S") and start is not None:
            spans.append((start, i + 1, kind))
            start, kind = None, None
    if start is not None:
        spans.append((start, len(tags), kind))
    return spans


def bio_tags(kind: str, length: int) -> list[str]:
    return [f"B-{kind}"] + [f"I-{kind}"] * (length - 1)


class MentionPool:
    """Per-type mentions of the corpus with cumulative counts, for O(log M) proportional draws."""

    def __init__(self, counts: dict[tuple[str, tuple[str, ...]], int]) -> None:
        grouped: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        for (kind, words), count in sorted(counts.items()):
            grouped.setdefault(kind, []).append((words, count))
        self.mentions = {kind: [w for w, _ in pairs] for kind, pairs in grouped.items()}
        self.cumulative = {kind: list(accumulate(c for _, c in pairs)) for kind, pairs in grouped.items()}

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[list[str], list | None]]) -> "MentionPool":
        """The pool of (tokens, tags) sentences; unlabelled sentences (tags None) add nothing."""
        counts: dict[tuple[str, tuple[str, ...]], int] = {}
        for tokens, tags in rows:
            for start, end, kind in mention_spans(tags or []):
                key = (kind, tuple(tokens[start:end]))
                counts[key] = counts.get(key, 0) + 1
        return cls(counts)

    def sample(self, kind: str, current: tuple[str, ...], rng: random.Random) -> tuple[str, ...] | None:
        """A mention of `kind` other than `current`, or None when the corpus has no other."""
        cumulative = self.cumulative.get(kind)
        if not cumulative:
            return None
        for _ in range(_RETRIES):
            words = self.mentions[kind][bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]
            if words != current:
                return words
        return None

    def __len__(self) -> int:
        return sum(len(m) for m in self.mentions.values())


@register_rule("mention")
@dataclass
class MentionRule:
    family: ClassVar[str] = "token"
    p: Probability = 0.3  # per-mention replacement probability (Dai & Adel tune p in 0.1..0.7)
    pool: MentionPool | None = field(default=None, repr=False, compare=False)

    def replace(self, tokens: list[str], tags: list, rng: random.Random) -> tuple[list[str], list, bool]:
        """Each span, with probability p, swapped for another mention of its type."""
        if self.pool is None:
            raise RuntimeError("mention rule used before its pool was built")
        out_tokens, out_tags, last, changed = [], [], 0, False
        for start, end, kind in mention_spans(tags):
            if rng.random() >= self.p:
                continue
            words = self.pool.sample(kind, tuple(tokens[start:end]), rng)
            if words is None:
                continue
            out_tokens += tokens[last:start] + list(words)
            out_tags += list(tags[last:start]) + bio_tags(kind, len(words))
            last, changed = end, True
        return out_tokens + tokens[last:], out_tags + list(tags[last:]), changed
