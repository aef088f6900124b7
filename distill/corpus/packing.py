"""Turn one tokenised document into model-length sequences with [CLS]/[SEP] and token types.

`pair` builds examples the way BERT pre-training does (create_pretraining_data.py): whole
sentences are accumulated up to the length budget and the chunk is cut at a random sentence
boundary into segments A and B. There is no random "next sentence": B is always the text that
follows A, because DistilBERT and TinyBERT (general distillation) drop the NSP objective, so
there is no NSP label either. `plain` cuts the document's wordpieces into contiguous windows
(RoBERTa-style full sentences, one document at a time). Sequences never span documents.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from distill.corpus.config import CorpusConfig

Sequence = tuple[list[int], list[int]]  # (input_ids with specials, token_type_ids)


@dataclass
class Packed:
    """A document's kept sequences, and how many were dropped for having under `min_tokens` pieces."""

    sequences: list[Sequence] = field(default_factory=list)
    dropped: int = 0


def pack_document(
    token_sentences: list[list[int]], config: CorpusConfig, rng: np.random.Generator, cls_id: int, sep_id: int
) -> list[Sequence]:
    """The kept sequences of one document (`token_sentences`: its sentences' wordpiece ids, no specials)."""
    return pack_counted(token_sentences, config, rng, cls_id, sep_id).sequences


def pack_counted(
    token_sentences: list[list[int]], config: CorpusConfig, rng: np.random.Generator, cls_id: int, sep_id: int
) -> Packed:
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
    units = []
    for sentence in token_sentences:
        for start in range(0, len(sentence), budget):
            units.append(list(sentence[start:start + budget]))
    return units


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
