"""Dev sets: a labelled file validated like a training input (rejects counted, not scored), gold
labels mapped through the model's label space (a label it cannot produce is refused in one line),
tokenized with the model's tokenizer and cut into length-sorted padded batches."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from distill.common.batching import encoder_inputs, pad_rows
from distill.common.columns import Columns
from distill.common.inputs.text import read_text_table
from distill.common.labels import LabelSpace
from distill.errors import InputError
from distill.tasks import get_task


@dataclass
class DevSet:
    """The dev file as padded batches with gold `labels`, and what was left out of scoring."""

    source: str
    batches: list[dict[str, torch.Tensor]]
    rows: int  # scored
    reasons: dict[str, int] = field(default_factory=dict)  # rows read but not scored (bad text, no label), by reason
    tag_names: list[str] | None = None  # token tasks: tag name of each class id (batches hold per-word labels)
    words_dropped: int = 0  # token tasks: words cut by max_length (or without a wordpiece), not scored

    @property
    def rejected(self) -> int:
        return sum(self.reasons.values())

    def describe(self) -> str:
        skipped = f", {self.rejected} rejected ({', '.join(f'{n} {r}' for r, n in self.reasons.items())})" \
            if self.rejected else ""
        dropped = f", {self.words_dropped} word(s) past max_length not scored" if self.words_dropped else ""
        return f"{self.rows} rows scored from {self.source}{skipped}{dropped}"

    def __iter__(self):
        return iter(self.batches)


def sorted_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Row indices by length (little padding: fast evaluation), `batch_size` at a time."""
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]


def read_dev_set(path: str | Path, columns: Columns, tokenizer, labels: LabelSpace, task: str, max_length: int,
                 batch_size: int = 128) -> DevSet:
    """The dev set a task scores on: sentences (or pairs) with a label or score, or tagged words."""
    read = _tagged if get_task(task).words else _sentences
    return read(path, columns, tokenizer, labels, max_length, batch_size)


def _counted(path, rejects: list[dict], kept: list[int], read: int, missing: str) -> dict[str, int]:
    """Rows not scored, by reason (without row-specific details); none left is an `InputError`."""
    reasons = Counter(re.sub(r"\s*\(.*\)$", "", re.sub(r"\d+", "N", r["reason"])) for r in rejects)
    if len(kept) < read:
        reasons[missing] += read - len(kept)
    if not kept:
        what = "tagged" if missing == "no tags" else "labelled"
        raise InputError(f"{path}: no {what} rows to evaluate ({sum(reasons.values())} rejected)")
    return dict(reasons)


def _sentences(path, columns: Columns, tokenizer, labels: LabelSpace, max_length: int, batch_size: int) -> DevSet:
    """Sentences (or pairs) and their class ids or scores."""
    text = read_text_table(path, columns)
    table = text.table
    ids = labels.ids(table.column("label").to_pylist(), table.column("row").to_pylist(), str(path))
    keep = [i for i, value in enumerate(ids) if value is not None]
    reasons = _counted(path, text.rejects, keep, len(ids), "no label")
    texts_a = table.column("text_a").to_pylist()
    texts_b = table.column("text_b").to_pylist() if columns.text_b else None
    encoded = tokenizer([texts_a[i] for i in keep], [texts_b[i] for i in keep] if texts_b else None, truncation=True,
                        max_length=max_length, padding=False)
    gold, batches = [ids[i] for i in keep], []
    for rows in sorted_batches([len(x) for x in encoded["input_ids"]], batch_size):
        batch = dict(tokenizer.pad([{k: encoded[k][r] for k in encoded.keys()} for r in rows], return_tensors="pt"))
        batches.append({**batch, "labels": torch.tensor([gold[r] for r in rows])})
    return DevSet(str(path), batches, len(keep), reasons)


def _tagged(path, columns: Columns, tokenizer, labels: LabelSpace, max_length: int, batch_size: int) -> DevSet:
    """Tagged sentences, aligned like the labelling stage (first piece per word, words past
    `max_length` dropped and counted); batches add `word_starts` [B, W] (−1 padded) and per-word
    `labels` (−100 padded)."""
    from distill.common.inputs.tokens import read_tagged
    from distill.words import align_words

    tagged = read_tagged(path, columns)
    keep = [i for i, tags in enumerate(tagged.tags or []) if tags is not None]
    reasons = _counted(path, tagged.rejects, keep, len(tagged.rows), "no tags")
    segments = "token_type_ids" in tokenizer.model_input_names
    aligned = align_words(tokenizer, [tagged.words[i] for i in keep], max_length, token_type_ids=segments)
    gold = [labels.ids([tagged.tags[index][w] for w in kept], [tagged.rows[index]] * len(kept), str(path), "tag")
            for index, kept in zip(keep, aligned.kept)]
    batches = []
    for rows in sorted_batches([len(x) for x in aligned.input_ids], batch_size):
        types = [aligned.token_type_ids[r] for r in rows] if segments else None
        batches.append({**encoder_inputs([aligned.input_ids[r] for r in rows], tokenizer.pad_token_id or 0, types),
                        "word_starts": pad_rows([aligned.word_starts[r] for r in rows], -1, 1),
                        "labels": pad_rows([gold[r] for r in rows], -100, 1)})
    return DevSet(str(path), batches, len(keep), reasons, labels.names(), aligned.truncated + aligned.without_pieces)
