"""How one shard's rows are built from its documents (no Ray here), as BERT's create_pretraining_data.py does.

Packing: `pair` takes whole sentences up to the length budget and cuts them at a random sentence boundary into
segments A and B, but B always follows A (DistilBERT and TinyBERT drop NSP); `plain` cuts contiguous windows
(RoBERTa-style). Sequences never span documents. Masking (80/10/10) is static: each copy is masked once,
offline, so the teacher's outputs at the masked positions can be cached.

One row per (sequence, copy), `uid` "<document>-<sequence>-<copy>"; `mlm_positions` and `mlm_labels` are
empty when `copies` is 0. Every random draw is seeded by the row's own coordinates, so a row is the same
whatever the shard layout or workers. Special positions (never masked) hold any of the tokenizer's special
ids, as in `get_special_tokens_mask`: [CLS], [SEP] and [UNK] (predicting [UNK] teaches nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from distill.corpus.config import CorpusConfig
from distill.corpus.vocab import TextEncoder, non_special_ids

SCHEMA = pa.schema([
    pa.field("uid", pa.string(), nullable=False),
    pa.field("source_id", pa.string(), nullable=False),
    pa.field("aug_index", pa.int32(), nullable=False),
    pa.field("input_ids", pa.list_(pa.int32()), nullable=False),
    pa.field("token_type_ids", pa.list_(pa.int8()), nullable=False),
    pa.field("mlm_positions", pa.list_(pa.int32()), nullable=False),
    pa.field("mlm_labels", pa.list_(pa.int32()), nullable=False),
])
COUNTS = ("documents", "sequences", "rows", "tokens", "masked_positions", "dropped_short")


def packing_rng(seed: int, document: int) -> np.random.Generator:
    return np.random.default_rng([seed, document])


def masking_rng(seed: int, document: int, sequence: int, copy: int) -> np.random.Generator:
    return np.random.default_rng([seed, document, sequence, copy])


def prediction_count(candidates: int, config: CorpusConfig) -> int:
    """BERT's n = min(max_predictions, max(1, round(p * candidates))), never more than there are: at least one
    even at `mask_probability` 0 (use `copies: 0` for unmasked rows); `round` halves to even, like BERT's."""
    wanted = min(config.max_predictions, max(1, int(round(config.mask_probability * candidates))))
    return min(wanted, candidates)


def mask_sequence(input_ids: Sequence[int], special_mask: Sequence[int | bool], config: CorpusConfig,
                  rng: np.random.Generator, vocab_ids: np.ndarray | Sequence[int], *,
                  mask_token_id: int) -> tuple[list[int], list[int], list[int]]:
    """(masked input_ids, chosen non-special positions ascending, their original ids); one uniform draw per
    position picks [MASK], a random token of `vocab_ids` (no specials: segments stay rebuildable) or keep."""
    ids = np.asarray(input_ids, dtype=np.int64)
    candidates = np.flatnonzero(np.asarray(special_mask, dtype=bool) == 0)
    n = prediction_count(len(candidates), config)
    if n == 0:
        return ids.tolist(), [], []
    positions = np.sort(rng.choice(candidates, size=n, replace=False))
    fate = rng.random(n)
    replacement = np.asarray(vocab_ids, dtype=np.int64)[rng.integers(0, len(vocab_ids), size=n)]
    labels = ids[positions].copy()
    masked = ids.copy()
    to_mask = fate < config.mask_token_ratio
    to_random = ~to_mask & (fate < config.mask_token_ratio + config.random_token_ratio)
    masked[positions[to_mask]] = mask_token_id
    masked[positions[to_random]] = replacement[to_random]
    return masked.tolist(), positions.tolist(), labels.tolist()


IdsAndTypes = tuple[list[int], list[int]]  # (input_ids with specials, token_type_ids)


@dataclass
class Packed:
    """A document's kept sequences, and how many were dropped for having under `min_tokens` pieces."""

    sequences: list[IdsAndTypes] = field(default_factory=list)
    dropped: int = 0


def pack_document(token_sentences: list[list[int]], config: CorpusConfig, rng: np.random.Generator, cls_id: int,
                  sep_id: int) -> list[IdsAndTypes]:
    """The kept sequences of one document (`token_sentences`: its sentences' wordpiece ids, no specials)."""
    return pack_counted(token_sentences, config, rng, cls_id, sep_id).sequences


def pack_counted(token_sentences: list[list[int]], config: CorpusConfig, rng: np.random.Generator, cls_id: int,
                 sep_id: int) -> Packed:
    """`pack_document`, also counting the sequences dropped as too short (for the manifest totals)."""
    if config.packing == "pair":
        candidates = _pair_sequences(token_sentences, config.max_length, rng, cls_id, sep_id)
    else:
        candidates = _plain_sequences(token_sentences, config.max_length, cls_id, sep_id)
    packed = Packed()
    for sequence, pieces in candidates:
        if pieces < config.min_tokens:
            packed.dropped += 1
        else:
            packed.sequences.append(sequence)
    return packed


def _units(token_sentences: list[list[int]], budget: int) -> list[list[int]]:
    """Sentences, each longer than `budget` cut into consecutive pieces of at most `budget`."""
    return [list(sentence[i:i + budget]) for sentence in token_sentences for i in range(0, len(sentence), budget)]


def _pair_sequences(token_sentences, max_length: int, rng: np.random.Generator, cls_id: int, sep_id: int):
    """`[CLS] A [SEP] B [SEP]` (types 0 through the first [SEP], then 1), or `[CLS] A [SEP]` for a
    chunk of one sentence; yields (sequence, non-special pieces)."""
    budget = max_length - 3
    chunks: list[list[list[int]]] = []
    current: list[list[int]] = []
    length = 0
    for unit in _units(token_sentences, budget):
        if current and length + len(unit) > budget:
            chunks.append(current)
            current, length = [], 0
        current.append(unit)
        length += len(unit)
    if current:
        chunks.append(current)
    for chunk in chunks:
        if len(chunk) == 1:
            a = chunk[0]
            yield ([cls_id, *a, sep_id], [0] * (len(a) + 2)), len(a)
            continue
        cut = int(rng.integers(1, len(chunk)))  # a sentence boundary inside the chunk
        a = [piece for unit in chunk[:cut] for piece in unit]
        b = [piece for unit in chunk[cut:] for piece in unit]
        yield ([cls_id, *a, sep_id, *b, sep_id], [0] * (len(a) + 2) + [1] * (len(b) + 1)), len(a) + len(b)


def _plain_sequences(token_sentences, max_length: int, cls_id: int, sep_id: int):
    """Contiguous windows of `max_length - 2` pieces: `[CLS] x [SEP]`, all type 0."""
    pieces = [piece for sentence in token_sentences for piece in sentence]
    window = max_length - 2
    for start in range(0, len(pieces), window):
        x = pieces[start:start + window]
        yield ([cls_id, *x, sep_id], [0] * (len(x) + 2)), len(x)


@dataclass
class ShardRows:
    """One shard's rows and its counts (`tokens`: the wordpieces of all rows, specials included)."""

    rows: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))

    @property
    def columns(self) -> dict[str, list]:
        return {name: [row[name] for row in self.rows] for name in SCHEMA.names}

    def table(self) -> pa.Table:
        return pa.Table.from_pylist(self.rows, schema=SCHEMA)


class RowBuilder:
    """Documents -> rows, given a loaded tokenizer (built once per worker)."""

    def __init__(self, tokenizer, config: CorpusConfig) -> None:
        self.config = config
        self.encoder = TextEncoder(tokenizer, config)
        self.cls_id, self.sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
        self.mask_id = tokenizer.mask_token_id
        self.special = np.array(sorted(set(int(i) for i in tokenizer.all_special_ids)), dtype=np.int64)
        self.vocab_ids = non_special_ids(tokenizer)

    def build(self, documents: list[str], first_document: int) -> ShardRows:
        """Rows of `documents`, numbered from `first_document`, in document / sequence / copy order."""
        out = ShardRows()
        out.counts["documents"] = len(documents)
        for offset, sentences in enumerate(self.encoder.token_sentences(documents)):
            document = first_document + offset
            packed = pack_counted(sentences, self.config, packing_rng(self.config.seed, document), self.cls_id,
                                  self.sep_id)
            out.counts["dropped_short"] += packed.dropped
            out.counts["sequences"] += len(packed.sequences)
            for sequence, (input_ids, token_types) in enumerate(packed.sequences):
                self._add_copies(out, document, sequence, input_ids, token_types)
        return out

    def _add_copies(self, out: ShardRows, document: int, sequence: int, input_ids: list[int],
                    token_types: list[int]) -> None:
        special_mask = np.isin(np.asarray(input_ids, dtype=np.int64), self.special)
        for copy in range(max(1, self.config.copies)):
            ids, positions, labels = list(input_ids), [], []
            if self.config.copies:
                rng = masking_rng(self.config.seed, document, sequence, copy)
                ids, positions, labels = mask_sequence(input_ids, special_mask, self.config, rng, self.vocab_ids,
                                                       mask_token_id=self.mask_id)
            out.rows.append({"uid": f"{document}-{sequence}-{copy}", "source_id": f"{document}-{sequence}",
                             "aug_index": copy, "input_ids": ids, "token_type_ids": token_types,
                             "mlm_positions": positions, "mlm_labels": labels})
            out.counts["rows"] += 1
            out.counts["tokens"] += len(ids)
            out.counts["masked_positions"] += len(positions)
