"""mention — mention replacement (Dai & Adel 2020, §2): each entity mention (BIO, IOB1 or IOBES) is, with
probability p, replaced by another mention of its type from the input, drawn in proportion to its count;
its tags are rewritten B-X, I-X, ... for the new length. Token tasks only.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

import pyarrow as pa

from augment.rules.pos import Proportional
from augment.rules.registry import register_rule
from distill.common.config_io import Probability

Span = tuple[int, int, str]  # [start, end) word indices and the entity type
_RETRIES = 8  # draws before giving up on finding a different mention of that type
UNNAMED_TAGS = "tags are integer ids without names; give tag names (B-PER, ...) or a ClassLabel feature"


def entity_type(tag: str) -> tuple[str, str] | None:
    """(prefix, type) of an entity tag ("B-PER" -> ("B", "PER")), None for O. An integer id says
    nothing about which words are `O`: refused, never taken for `O`."""
    if not isinstance(tag, str):
        raise TypeError(f"tag {tag!r}: {UNNAMED_TAGS}")
    if tag == "O":
        return None
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BIES":
        return tag[0], tag[2:]
    return "I", tag  # IO scheme: a bare type continues the mention before it


def mention_spans(tags: list) -> list[Span]:
    """Entity spans of a tag sequence (BIO / IOB1 / IOBES), in order."""
    spans: list[Span] = []
    start, kind = None, None
    for i, tag in enumerate([*tags, "O"]):  # the last "O" ends a mention still open
        prefix, this = entity_type(tag) or (None, None)
        if start is not None and not (this == kind and prefix in ("I", "E")):
            spans.append((start, i, kind))
            start = None
        if this is not None and start is None:
            start, kind = i, this
        if prefix in ("E", "S") and start is not None:
            spans.append((start, i + 1, kind))
            start = None
    return spans


class MentionPool(Proportional):
    """Mentions of the corpus by type, drawn in proportion to how often each occurs."""

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[list[str], list | None]]) -> "MentionPool":
        """The pool of (tokens, tags) sentences; unlabelled sentences (tags None) add nothing."""
        counts = Counter((kind, tuple(tokens[start:end])) for tokens, tags in rows
                         for start, end, kind in mention_spans(tags or []))
        return cls((kind, words, count) for (kind, words), count in counts.items())

    @classmethod
    def from_table(cls, table: pa.Table) -> "MentionPool":
        """The pool of a token table (`tokens`, `tags`): built on the driver from the whole input."""
        return cls.from_rows(zip(table.column("tokens").to_pylist(), table.column("tags").to_pylist()))

    def sample(self, kind: str, current: tuple[str, ...], rng: random.Random) -> tuple[str, ...] | None:
        """A mention of `kind` other than `current`, or None when the corpus has no other."""
        for _ in range(_RETRIES):
            words = super().sample(kind, rng)
            if words is None or words != current:
                return words
        return None


@register_rule("mention")
@dataclass
class MentionRule:
    p: Probability = 0.3  # per-mention replacement probability (Dai & Adel tune p in 0.1..0.7)
    pool: MentionPool | None = field(default=None, repr=False, compare=False)

    def replace(self, tokens: list[str], tags: list, rng: random.Random) -> tuple[list[str], list, bool]:
        """Each span, with probability p, swapped for another mention of its type."""
        if self.pool is None:
            raise RuntimeError("mention rule used before its pool was built")
        out_tokens, out_tags, last, changed = [], [], 0, False
        for start, end, kind in mention_spans(tags):
            words = self.pool.sample(kind, tuple(tokens[start:end]), rng) if rng.random() < self.p else None
            if words is None:
                continue
            out_tokens += tokens[last:start] + list(words)
            out_tags += list(tags[last:start]) + [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
            last, changed = end, True
        return out_tokens + tokens[last:], out_tags + list(tags[last:]), changed
