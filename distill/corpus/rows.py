"""The corpus shard format and how one shard's rows are built from its documents (no Ray here).

One row per (sequence, copy): `uid` "<document>-<sequence>-<copy>", `source_id`
"<document>-<sequence>", `aug_index` = copy, `input_ids` (masked), `token_type_ids`,
`mlm_positions` (ascending) and `mlm_labels` (the original ids there; both empty when
`copies` is 0). Every random choice comes from a generator seeded by the row's own coordinates
(`[seed, document]` for packing, `[seed, document, sequence, copy]` for masking), so a row is
the same whatever the shard layout, worker count or scheduling.

Special positions (never masked, not counted for the 15 %) are those holding any of the
tokenizer's special ids, as in Hugging Face's `get_special_tokens_mask`: the inserted [CLS] and
[SEP], and [UNK] pieces of the text (predicting [UNK] teaches nothing). `min_tokens` counts every
piece between the specials the packer inserted, [UNK] included.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from distill.corpus.config import CorpusConfig
from distill.corpus.encoder import TextEncoder
from distill.corpus.masking import mask_sequence
from distill.corpus.packing import pack_counted
from distill.corpus.vocab import non_special_ids

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


@dataclass
class ShardRows:
    """One shard's rows (as columns) and its counts: `tokens` are the wordpieces of all rows,
    specials included (what the teacher reads); `masked_positions` sums the rows' positions."""

    columns: dict[str, list] = field(default_factory=lambda: {name: [] for name in SCHEMA.names})
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))

    def table(self) -> pa.Table:
        return pa.table(self.columns, schema=SCHEMA)


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
            if self.config.copies:
                rng = masking_rng(self.config.seed, document, sequence, copy)
                ids, positions, labels = mask_sequence(input_ids, special_mask, self.config, rng, self.vocab_ids,
                                                       mask_token_id=self.mask_id)
            else:
                ids, positions, labels = list(input_ids), [], []
            columns = out.columns
            columns["uid"].append(f"{document}-{sequence}-{copy}")
            columns["source_id"].append(f"{document}-{sequence}")
            columns["aug_index"].append(copy)
            columns["input_ids"].append(ids)
            columns["token_type_ids"].append(token_types)
            columns["mlm_positions"].append(positions)
            columns["mlm_labels"].append(labels)
            out.counts["rows"] += 1
            out.counts["tokens"] += len(ids)
            out.counts["masked_positions"] += len(positions)
