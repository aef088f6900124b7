"""Source rows → augmented rows, free of Ray: `Augmenter` does what every row shares (seeding, order,
dedup, uids, rule counts), a `RowKind` what differs between a text row and a token row. Each example's
RNG is `random.Random("<seed>/<family>/<source_id>")`: its samples never depend on the worker or block,
and each family (tang, tinybert, mention) has its own, so enabling one does not change another's samples.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import partial
from itertools import chain

import pyarrow as pa
import pyarrow.compute as pc

from augment.config import AugmentConfig
from augment.rules import build_rule
from augment.rules.mention import UNNAMED_TAGS, MentionPool, entity_type
from augment.rules.pos import UnigramTables, sum_pos_counts
from augment.subphrases import COLUMN as SUBPHRASE
from augment.tang import TANG_ORDER, TangRules, tang_samples
from augment.tinybert import TinyBertRules, tinybert_samples
from augment.words import Words, split_texts, words_columns, words_from_row
from distill.errors import InputError
from distill.storage.shards import augmented_schema, token_augmented_schema

Sample = tuple[tuple, dict, str]  # dedup key, output fields, rule name


def example_rng(seed: int, family: str, source_id: str) -> random.Random:
    return random.Random(f"{seed}/{family}/{source_id}")


class RowKind:
    """What differs between kinds of row; the static parts serve the driver and the spaCy pass.
    `expand(rows, seed)` yields per row its output fields, the dedup keys of its copies and its samples."""

    words_given = False  # token rows: spaCy runs only to POS-tag their words, for the pos rule

    def __init__(self, config: AugmentConfig, rules: dict) -> None:
        self.config = config
        self.tang = TangRules(**{name: rules[name] for name in TANG_ORDER if name in rules})

    @staticmethod
    def check(table: pa.Table, source: object) -> None:
        """Refuse, in one line and before any work, an input the rules would augment wrongly."""

    @classmethod
    def needs_spacy(cls, config: AugmentConfig) -> bool:
        """Whether the rows go through spaCy (`split`) before they are augmented."""
        return config.uses("pos") or not cls.words_given

    @classmethod
    def pos_counts(cls, blocks: Iterable[pa.Table]) -> pa.Table:
        """The pos rule's (tag, word, count) over the blocks `split` tagged."""
        return sum_pos_counts(pairs for block in blocks for pairs in cls.pos_pairs(block))


class TextRows(RowKind):
    """A sentence or sentence pair (`text_a`, `text_b`, `label`), split into words by spaCy."""

    schema = staticmethod(augmented_schema)

    def __init__(self, config: AugmentConfig, rules: dict) -> None:
        super().__init__(config, rules)
        self.tang = self.tang if {"mask", "pos", "ngram"} & set(rules) else None
        self.tinybert = TinyBertRules(rules.get("mlm"), rules.get("glove")) if {"mlm", "glove"} & set(rules) else None

    @staticmethod
    def value_type(table: pa.Table) -> pa.DataType:
        return table.schema.field("label").type

    @staticmethod
    def split(nlp, batch: pa.Table, tag_attr: str | None, batch_size: int) -> dict[str, pa.Array]:
        """Words (and POS tags with `tag_attr`) of both sides; `text_b` may be null."""
        words_a = split_texts(nlp, batch.column("text_a").to_pylist(), tag_attr, batch_size)
        texts_b = batch.column("text_b").to_pylist()
        split_b = iter(split_texts(nlp, [t for t in texts_b if t is not None], tag_attr, batch_size))
        words_b = [next(split_b) if t is not None else None for t in texts_b]
        return {**words_columns("a", words_a), **words_columns("b", words_b)}

    @staticmethod
    def pos_pairs(batch: pa.Table) -> Iterator[pa.Table]:
        for side in ("a", "b"):
            yield pa.table({"tag": pc.list_flatten(batch.column(f"tags_{side}")),
                            "word": pc.list_flatten(batch.column(f"tokens_{side}"))})

    def expand(self, rows: list[dict], seed: int) -> Iterator[tuple[dict, set, Iterator[Sample]]]:
        all_sides = [[w for w in (words_from_row(r, "a"), words_from_row(r, "b")) if w is not None] for r in rows]
        candidates = self.tinybert.candidates(all_sides) if self.tinybert else [None] * len(rows)  # one batch
        for row, sides, found in zip(rows, all_sides, candidates):
            texts = [row["text_a"]] + ([row["text_b"]] if row["text_b"] is not None else [])
            seen = {tuple(texts), tuple(words.text() for words in sides)}
            yield self._fields(row, texts), seen, self._samples(row, sides, found, seed)

    def _samples(self, row: dict, sides: list[Words], candidates, seed: int) -> Iterator[Sample]:
        streams = []
        if self.tang and not row.get(SUBPHRASE):  # `tang.skip_subphrases`
            rng = example_rng(seed, "tang", row["source_id"])
            sample = partial(self.tang.sample_sides, sides, self.config.tang, rng)
            streams.append(tang_samples(sides, self.config.tang, sample))
        if self.tinybert:
            rng = example_rng(seed, "tinybert", row["source_id"])
            streams.append(tinybert_samples(sides, candidates, self.config.tinybert, rng))
        for texts, rule in chain(*streams):
            if all(text.strip() for text in texts):
                yield tuple(texts), self._fields(row, texts), rule

    @staticmethod
    def _fields(row: dict, texts: list[str]) -> dict:
        return {"text_a": texts[0], "text_b": texts[1] if len(texts) > 1 else None, "label": row["label"]}


class TokenRows(RowKind):
    """Given words with one tag per word (`tags` None: unlabelled); the pos tables count only `O` words."""

    schema = staticmethod(token_augmented_schema)
    words_given = True

    @staticmethod
    def check(table: pa.Table, source: object) -> None:
        """Integer tag ids without names do not say which words are `O`, which every token rule needs."""
        if pa.types.is_integer(TokenRows.value_type(table)):
            raise InputError(f"{source}: {UNNAMED_TAGS}")

    @staticmethod
    def value_type(table: pa.Table) -> pa.DataType:
        return table.schema.field("tags").type.value_type

    @staticmethod
    def split(nlp, batch: pa.Table, tag_attr: str, batch_size: int) -> dict[str, pa.Array]:
        """POS tags of the given words (a spaCy `Doc` from the words through the tagger) and
        whether each may be replaced (`outside`: tagged `O`, or of an unlabelled sentence)."""
        from spacy.tokens import Doc

        sentences = batch.column("tokens").to_pylist()
        docs = nlp.pipe((Doc(nlp.vocab, words=words) for words in sentences), batch_size=batch_size)
        pos = [[getattr(token, tag_attr) for token in doc] for doc in docs]
        outside = [[entity_type(t) is None for t in tags] if tags is not None else [True] * len(words)
                   for words, tags in zip(sentences, batch.column("tags").to_pylist())]
        return {"pos": pa.array(pos, pa.list_(pa.string())), "outside": pa.array(outside, pa.list_(pa.bool_()))}

    @staticmethod
    def pos_pairs(batch: pa.Table) -> Iterator[pa.Table]:
        pairs = pa.table({"tag": pc.list_flatten(batch.column("pos")), "word": pc.list_flatten(batch.column("tokens"))})
        yield pairs.filter(pc.list_flatten(batch.column("outside")))

    def expand(self, rows: list[dict], seed: int) -> Iterator[tuple[dict, set, Iterator[Sample]]]:
        for row in rows:
            tokens, tags, source_id = row["tokens"], row["tags"], row["source_id"]
            words = Words(tokens, [], row.get("pos") or [])
            rngs = example_rng(seed, "tang", source_id), example_rng(seed, "mention", source_id)
            samples = tang_samples([words], self.config.tang, partial(self.tang.sample_tagged, words, tags, *rngs))
            yield ({"tokens": tokens, "tags": tags}, {tuple(tokens)},
                   ((tuple(new), {"tokens": new, "tags": new_tags}, rule) for (new, new_tags), rule in samples))


def row_kind(config: AugmentConfig) -> type[RowKind]:
    return TokenRows if config.is_token_task else TextRows


class Augmenter:
    """The configured rules (and their models, once `setup()` has loaded them) over one kind of row."""

    def __init__(self, config: AugmentConfig, value_type: pa.DataType, pos_tables: UnigramTables | None = None,
                 mentions: MentionPool | None = None) -> None:
        """`value_type`: a text row's label type or a token row's tag type; `pos_tables`, `mentions`: statistics."""
        self.config = config
        self.rules = {name: build_rule(name, opts) for name, opts in config.rules.items()}
        for name, attr, value in (("pos", "tables", pos_tables), ("mention", "pool", mentions)):
            if name in self.rules:
                if value is None:
                    raise ValueError(f"the {name} rule needs its {attr} (a statistic of the whole input)")
                setattr(self.rules[name], attr, value)
        self.kind = row_kind(config)(config, self.rules)
        self.schema = self.kind.schema(value_type)

    def setup(self) -> None:
        """Load models (masked LM, GloVe file): once per worker, not per shard."""
        for rule in self.rules.values():
            if hasattr(rule, "setup"):
                rule.setup()

    def augment(self, examples: pa.Table) -> tuple[pa.Table, Counter]:
        """Rows for `examples` (with their spaCy columns), originals first per example, in input order."""
        rows = examples.sort_by("row").to_pylist()
        out: list[dict] = []
        for row, (original, seen, samples) in zip(rows, self.kind.expand(rows, self.config.seed)):
            copies = [(original, "original")]
            for key, fields, rule in samples:
                if rule and key not in seen:
                    seen.add(key)
                    copies.append((fields, rule))
            out += [{"uid": f"{row['source_id']}-{index}", "source_id": row["source_id"], "aug_index": index,
                     "rule": rule, **fields} for index, (fields, rule) in enumerate(copies)]
        return pa.Table.from_pylist(out, schema=self.schema), Counter(copy["rule"] for copy in out)
