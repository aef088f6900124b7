"""pos — Tang et al. 2019 §3.1: with probability p_pos = 0.1 a word is replaced by another
word of the same POS tag, drawn from the corpus unigram distribution of words carrying
that tag. As in the reference code (castorini/d-bert), candidates keep their duplicates,
i.e. sampling is proportional to corpus counts.

The tables are a global statistic of the whole input: `sum_pos_counts` adds up the tagged
blocks of the spaCy pass before any example is augmented.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from itertools import accumulate
from typing import ClassVar, Iterable, Literal

import pyarrow as pa
import pyarrow.compute as pc

from augment.rules.registry import register_rule
from distill.common.config_io import Probability


def sum_pos_counts(batches: Iterable[pa.Table]) -> pa.Table:
    """(tag, word, count) over all tagged blocks, vectorised in Arrow.

    Partial counts per block, then one sum: a Ray groupby shuffle would cost ~10 s of fixed
    overhead on 2 CPUs for a table of a few thousand rows.
    """
    # use_threads=False: small tables, and Acero's threaded group_by can fail with "thread index
    # N is out of range" once other libraries in the process have resized Arrow's thread pool.
    partial = []
    for batch in batches:
        for side in ("a", "b"):
            tokens, tags = batch.column(f"tokens_{side}"), batch.column(f"tags_{side}")
            pairs = pa.table({"tag": pc.list_flatten(tags), "word": pc.list_flatten(tokens)})
            partial.append(pairs.group_by(["tag", "word"], use_threads=False).aggregate([([], "count_all")]))
    counts = pa.concat_tables(partial).group_by(["tag", "word"], use_threads=False).aggregate([("count_all", "sum")])
    counts = counts.rename_columns(["tag", "word", "count"]).cast(
        pa.schema([("tag", pa.string()), ("word", pa.string()), ("count", pa.int64())])
    )
    return counts.sort_by([("tag", "ascending"), ("word", "ascending")])


class UnigramTables:
    """Per-tag cumulative counts for O(log V) sampling proportional to frequency."""

    def __init__(self, table: pa.Table) -> None:
        self.words: dict[str, list[str]] = {}
        self.cumulative: dict[str, list[int]] = {}
        tags, words, counts = (table.column(c).to_pylist() for c in ("tag", "word", "count"))
        grouped: dict[str, list[tuple[str, int]]] = {}
        for tag, word, count in zip(tags, words, counts):
            grouped.setdefault(tag, []).append((word, count))
        for tag, pairs in grouped.items():
            pairs.sort()  # independent of the order blocks were aggregated in
            self.words[tag] = [w for w, _ in pairs]
            self.cumulative[tag] = list(accumulate(c for _, c in pairs))

    def sample(self, tag: str, rng: random.Random) -> str | None:
        cumulative = self.cumulative.get(tag)
        if not cumulative:
            return None
        draw = rng.random() * cumulative[-1]
        return self.words[tag][bisect.bisect_right(cumulative, draw)]


@register_rule("pos")
@dataclass
class PosRule:
    family: ClassVar[str] = "tang"
    p: Probability = 0.1  # p_pos, Tang et al. 2019 §3.1
    # spaCy fine-grained (PTB) tags keep inflection (NNS->NNS); "pos_" for coarse UPOS
    tag_attr: Literal["tag_", "pos_"] = "tag_"
    tables: UnigramTables | None = field(default=None, repr=False, compare=False)

    def replace(self, word: str, tag: str, rng: random.Random) -> str:
        if self.tables is None:
            raise RuntimeError("pos rule used before its unigram tables were computed")
        return self.tables.sample(tag, rng) or word
