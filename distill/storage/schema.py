"""Row schema of augmented shards (docs/design.md, "Formats"), shared by the writer and every reader."""

from __future__ import annotations

import pyarrow as pa

AUGMENTED_COLUMNS = ("uid", "source_id", "aug_index", "text_a", "text_b", "label", "rule")


def augmented_schema(label_type: pa.DataType) -> pa.Schema:
    return pa.schema(
        [
            pa.field("uid", pa.string(), nullable=False),  # "<source_id>-<aug_index>"
            pa.field("source_id", pa.string(), nullable=False),
            pa.field("aug_index", pa.int32(), nullable=False),  # 0 = the original example
            pa.field("text_a", pa.string(), nullable=False),
            pa.field("text_b", pa.string()),  # null for single-sentence tasks
            pa.field("label", label_type),  # gold label of the source example
            pa.field("rule", pa.dictionary(pa.int32(), pa.string())),  # original | mask | pos+ngram | ...
        ]
    )


TOKEN_AUGMENTED_COLUMNS = ("uid", "source_id", "aug_index", "rule", "tokens", "tags")


def token_augmented_schema(tag_type: pa.DataType) -> pa.Schema:
    """Token tasks (NER shape): words and their tags, one per word; `tag_type` is string or int64."""
    return pa.schema(
        [
            pa.field("uid", pa.string(), nullable=False),  # "<source_id>-<aug_index>"
            pa.field("source_id", pa.string(), nullable=False),
            pa.field("aug_index", pa.int32(), nullable=False),  # 0 = the original sentence
            pa.field("rule", pa.string()),  # original | mask | pos | mention | mask+mention | ...
            pa.field("tokens", pa.list_(pa.string()), nullable=False),
            pa.field("tags", pa.list_(tag_type)),  # same length as tokens; null for an unlabelled sentence
        ]
    )
