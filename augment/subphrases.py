"""Rows that lie, whole words, inside a longer row of the same input, such as SST-2's parse-tree phrases:
their Tang samples would be near-copies of the longer row's, so `tang.skip_subphrases` gives them none and
augmentation can reach every whole sentence without multiplying its sub-phrases twenty times."""

from __future__ import annotations

import logging

import pyarrow as pa

log = logging.getLogger(__name__)
COLUMN = "subphrase"  # internal: read by the augmenter, never written


def inside_longer(texts: list[str | None]) -> list[bool]:
    """For each text, whether its words occur as a contiguous run inside a longer text of the list."""
    known = {" ".join(t.split()) for t in texts if t}
    inside: set[str] = set()
    for text in known:
        words = text.split(" ")
        n = len(words)
        for start in range(n):
            for end in range(start + 1, n + 1 if start else n):  # proper runs only
                span = " ".join(words[start:end])
                if span in known:
                    inside.add(span)
    return [bool(t) and " ".join(t.split()) in inside for t in texts]


def mark_subphrases(table: pa.Table) -> pa.Table:
    """The input table with the `subphrase` flag; sentence pairs are never flagged."""
    texts = table.column("text_a").to_pylist()
    pairs = table.column("text_b").to_pylist() if "text_b" in table.column_names else [None] * len(texts)
    singles = [a if b is None else None for a, b in zip(texts, pairs)]
    flags = [flag and b is None for flag, b in zip(inside_longer(singles), pairs)]
    log.info("tang.skip_subphrases: %d of %d rows lie inside a longer row and get no Tang samples", sum(flags),
             len(flags))
    return table.append_column(COLUMN, pa.array(flags, pa.bool_()))
