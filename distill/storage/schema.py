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
