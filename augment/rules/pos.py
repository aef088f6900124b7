"""pos — Tang et al. 2019 §3.1: with probability p_pos = 0.1 a word is replaced by another word of the same
POS tag, drawn in proportion to corpus counts (as castorini/d-bert). The tables are a statistic of the whole
input, summed from the spaCy pass before any example is augmented (token tasks: only words tagged `O`).
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, Iterable, Literal

import pyarrow as pa

from augment.rules.registry import register_rule
from distill.common.config_io import Probability


def sum_pos_counts(pairs: Iterable[pa.Table]) -> pa.Table:
    """(tag, word, count) over the (tag, word) tables of all tagged blocks, in Arrow (a Ray groupby shuffle
    costs ~10 s). use_threads=False: Acero's threaded group_by can fail ("thread index N is out of range")
    once other libraries have resized Arrow's thread pool."""
    partial = [table.group_by(["tag", "word"], use_threads=False).aggregate([([], "count_all")]) for table in pairs]
    counts = pa.concat_tables(partial).group_by(["tag", "word"], use_threads=False).aggregate([("count_all", "sum")])
    schema = pa.schema([("tag", pa.string()), ("word", pa.string()), ("count", pa.int64())])
    counts = counts.rename_columns(["tag", "word", "count"]).cast(schema)
    return counts.sort_by([("tag", "ascending"), ("word", "ascending")])


class Proportional:
    """Items by key with cumulative counts, for O(log n) draws proportional to count. Sorted, so a
    draw does not depend on the order the counts were added up in."""

    def __init__(self, counts: Iterable[tuple[str, Any, int]]) -> None:
        grouped: dict[str, list[tuple[Any, int]]] = {}
        for key, item, count in sorted(counts):
            grouped.setdefault(key, []).append((item, count))
        self.items = {key: [item for item, _ in pairs] for key, pairs in grouped.items()}
        self.cumulative = {key: list(accumulate(count for _, count in pairs)) for key, pairs in grouped.items()}

    def sample(self, key: str, rng: random.Random) -> Any | None:
        cumulative = self.cumulative.get(key)
        if not cumulative:
            return None
        return self.items[key][bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]


class UnigramTables(Proportional):
    """Words by POS tag, from the (tag, word, count) table of `sum_pos_counts`."""

    def __init__(self, table: pa.Table) -> None:
        super().__init__(zip(*(table.column(c).to_pylist() for c in ("tag", "word", "count"))))


@register_rule("pos")
@dataclass
class PosRule:
    p: Probability = 0.1  # p_pos, Tang et al. 2019 §3.1
    # spaCy fine-grained (PTB) tags keep inflection (NNS->NNS); "pos_" for coarse UPOS
    tag_attr: Literal["tag_", "pos_"] = "tag_"
    tables: UnigramTables | None = field(default=None, repr=False, compare=False)

    def replace(self, word: str, tag: str, rng: random.Random) -> str:
        if self.tables is None:
            raise RuntimeError("pos rule used before its unigram tables were computed")
        return self.tables.sample(tag, rng) or word
