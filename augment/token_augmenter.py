"""Token tasks: POS tags for pre-split words, the global statistics, and sentences → augmented rows.

The words are given (the input is already split), so spaCy only tags them: a `Doc` built from the
words goes through the tagging components (`words.load_spacy(with_tags=True)`). The pos rule's
unigram tables count only replaceable words (tagged `O`, or of an unlabelled sentence), so a
replacement never brings an entity word into an `O` slot. No Ray code here.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from augment.augmenter import build_rules, example_rng
from augment.config import AugmentConfig
from augment.rules.mention import MentionPool
from augment.rules.pos import UnigramTables
from augment.token_rules import TokenRules, is_outside, token_samples
from augment.words import load_spacy
from distill.storage.schema import token_augmented_schema


class TokenTagger:
    """spaCy POS tags (`pos` column) and replaceability (`outside` column) of each given word."""

    def __init__(self, spacy_model: str, tag_attr: str | None, batch_size: int) -> None:
        self.nlp = load_spacy(spacy_model, with_tags=True)
        self.tag_attr = tag_attr or "tag_"
        self.batch_size = batch_size

    def __call__(self, batch: pa.Table) -> pa.Table:
        from spacy.tokens import Doc

        sentences = batch.column("tokens").to_pylist()
        docs = self.nlp.pipe((Doc(self.nlp.vocab, words=words) for words in sentences), batch_size=self.batch_size)
        pos = [[getattr(token, self.tag_attr) for token in doc] for doc in docs]
        outside = [[is_outside(t) for t in tags] if tags is not None else [True] * len(words)
                   for words, tags in zip(sentences, batch.column("tags").to_pylist())]
        batch = batch.append_column("pos", pa.array(pos, pa.list_(pa.string())))
        return batch.append_column("outside", pa.array(outside, pa.list_(pa.bool_())))


def token_pos_counts(batches) -> pa.Table:
    """(tag, word, count) over the replaceable words of all tagged blocks (see `sum_pos_counts`)."""
    partial = []
    for batch in batches:
        pairs = pa.table({"tag": pc.list_flatten(batch.column("pos")), "word": pc.list_flatten(batch.column("tokens"))})
        pairs = pairs.filter(pc.list_flatten(batch.column("outside")))
        partial.append(pairs.group_by(["tag", "word"], use_threads=False).aggregate([([], "count_all")]))
    counts = pa.concat_tables(partial).group_by(["tag", "word"], use_threads=False).aggregate([("count_all", "sum")])
    counts = counts.rename_columns(["tag", "word", "count"]).cast(
        pa.schema([("tag", pa.string()), ("word", pa.string()), ("count", pa.int64())])
    )
    return counts.sort_by([("tag", "ascending"), ("word", "ascending")])


def mention_pool(table: pa.Table) -> MentionPool:
    """Every mention of the input, by type: computed on the driver from the read table."""
    return MentionPool.from_rows(zip(table.column("tokens").to_pylist(), table.column("tags").to_pylist()))


class TokenAugmenter:
    """Token-task counterpart of `augment.augmenter.Augmenter` (same seeding, order and dedup)."""

    tinybert = None  # no masked LM on token tasks (ShardWriter reports where it ran)

    def __init__(self, config: AugmentConfig, tag_type: pa.DataType, pos_tables: UnigramTables | None = None,
                 mentions: MentionPool | None = None) -> None:
        self.config = config
        self.schema = token_augmented_schema(tag_type)
        rules = build_rules(config, pos_tables)
        if "mention" in rules:
            if mentions is None:
                raise ValueError("the mention rule needs the corpus's mention pool")
            rules["mention"].pool = mentions
        self.rules = TokenRules(rules.get("mask"), rules.get("pos"), rules.get("mention"))

    def setup(self) -> None:
        """Nothing to load: spaCy runs in the tagger, the pools arrive built."""

    def augment(self, examples: pa.Table) -> tuple[pa.Table, Counter]:
        """Rows for `examples` (with a `pos` column when the pos rule is on), originals first."""
        rows = examples.sort_by("row").to_pylist()
        out = {name: [] for name in self.schema.names}
        rule_counts: Counter = Counter()

        def emit(row: dict, index: int, tokens: list[str], tags, rule: str) -> None:
            out["uid"].append(f"{row['source_id']}-{index}")
            out["source_id"].append(row["source_id"])
            out["aug_index"].append(index)
            out["rule"].append(rule)
            out["tokens"].append(tokens)
            out["tags"].append(tags)
            rule_counts[rule] += 1

        seed = self.config.seed
        for row in rows:
            tokens, tags = row["tokens"], row["tags"]
            emit(row, 0, tokens, tags, "original")
            seen, index = {tuple(tokens)}, 0
            rng, mention_rng = example_rng(seed, "tang", row["source_id"]), example_rng(seed, "mention", row["source_id"])
            for new, new_tags, rule in token_samples(tokens, tags, row.get("pos") or [], self.rules, self.config.tang,
                                                     rng, mention_rng):
                if not rule or tuple(new) in seen:
                    continue
                seen.add(tuple(new))
                index += 1
                emit(row, index, new, new_tags, rule)
        return pa.table(out, schema=self.schema), rule_counts
