"""Turn tokenised source examples into augmented rows: the per-example logic, free of Ray.

Determinism (docs/design.md): each example's RNG is `random.Random("<seed>/<family>/<source_id>")`
(seeded through SHA-512 of that string), so its samples depend only on the input, config,
seed and models, never on which worker or block handled it. Each family has its own RNG,
so enabling TinyBERT rules does not change the Tang samples.
"""

from __future__ import annotations

import random
from collections import Counter

import pyarrow as pa

from augment.config import AugmentConfig
from augment.rules import build_rule
from augment.rules.pos import UnigramTables
from augment.tang import TangRules, tang_samples
from augment.tinybert import TinyBertRules, tinybert_samples
from augment.words import Words, words_from_row
from distill.storage.schema import augmented_schema


def example_rng(seed: int, family: str, source_id: str) -> random.Random:
    return random.Random(f"{seed}/{family}/{source_id}")


def build_rules(config: AugmentConfig, pos_tables: UnigramTables | None) -> dict:
    """The configured rules by name, the pos rule given the tagging pass's unigram tables."""
    rules = {name: build_rule(name, opts) for name, opts in config.rules.items()}
    if "pos" in rules:
        if pos_tables is None:
            raise ValueError("the pos rule needs unigram tables from the tagging pass")
        rules["pos"].tables = pos_tables
    return rules


class Augmenter:
    """Holds the configured rules (and their models, once `setup()` has loaded them)."""

    def __init__(self, config: AugmentConfig, label_type: pa.DataType, pos_tables: UnigramTables | None = None):
        self.config = config
        self.schema = augmented_schema(label_type)
        rules = build_rules(config, pos_tables)
        self.tang = TangRules(rules.get("mask"), rules.get("pos"), rules.get("ngram"))
        self.tinybert = TinyBertRules(rules.get("mlm"), rules.get("glove"))
        self.use_tang = any(rules.get(n) for n in ("mask", "pos", "ngram"))
        self.use_tinybert = any(rules.get(n) for n in ("mlm", "glove"))

    def setup(self) -> None:
        """Load models (masked LM, GloVe file): once per worker, not per shard."""
        for rule in (self.tinybert.mlm, self.tinybert.glove):
            if rule is not None:
                rule.setup()

    def augment(self, examples: pa.Table) -> tuple[pa.Table, Counter]:
        """Rows for `examples` (with word columns), originals first per example, in input order."""
        examples = examples.sort_by("row")
        rows = examples.to_pylist()
        all_sides = [[w for w in (words_from_row(r, "a"), words_from_row(r, "b")) if w is not None] for r in rows]
        candidates = self.tinybert.candidates(all_sides) if self.use_tinybert else None
        out = {name: [] for name in self.schema.names}
        rule_counts: Counter = Counter()

        def emit(row: dict, index: int, texts: list[str], rule: str) -> None:
            out["uid"].append(f"{row['source_id']}-{index}")
            out["source_id"].append(row["source_id"])
            out["aug_index"].append(index)
            out["text_a"].append(texts[0])
            out["text_b"].append(texts[1] if len(texts) > 1 else None)
            out["label"].append(row["label"])
            out["rule"].append(rule)
            rule_counts[rule] += 1

        for e, (row, sides) in enumerate(zip(rows, all_sides)):
            original = [row["text_a"]] + ([row["text_b"]] if row["text_b"] is not None else [])
            emit(row, 0, original, "original")
            seen = {tuple(original), tuple(words.text() for words in sides)}
            index = 0
            for texts, rule in self._samples(row["source_id"], sides, candidates[e] if candidates else None):
                key = tuple(texts)
                if key in seen or not rule or not all(t.strip() for t in texts):
                    continue
                seen.add(key)
                index += 1
                emit(row, index, texts, rule)
        return pa.table(out, schema=self.schema), rule_counts

    def _samples(self, source_id: str, sides: list[Words], candidates):
        seed = self.config.seed
        if self.use_tang:
            yield from tang_samples(sides, self.tang, self.config.tang, example_rng(seed, "tang", source_id))
        if self.use_tinybert:
            yield from tinybert_samples(sides, candidates, self.config.tinybert, example_rng(seed, "tinybert", source_id))
