"""Feeding the trainer: shuffled batches from the memory-mapped cache, and the dev set.

Batches come from `TeacherCache.batch` (pyarrow, zero-copy reads) through a DataLoader whose
sampler yields whole index lists, so worker processes build padded batches in parallel and
the main process only moves them to the device. The order of epoch e is a permutation seeded
by (seed, e), so a resumed run skips exactly the batches it already trained on.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from distill.batching import length_grouped_batches
from distill.cache import TeacherCache, load
from distill.cache.encoding import list_lengths
from distill.common.labels import LabelSpace
from distill.common.text_inputs import Columns, InputError, read_text_table


class CacheBatches(torch.utils.data.Dataset):
    """`dataset[list_of_indices]` → one padded batch. Opens the cache lazily in each worker."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._cache: TeacherCache | None = None
        cache = load(self.path)
        self.length = len(cache)
        self.token_counts = np.concatenate([list_lengths(chunk) for chunk in cache.table.column("input_ids").chunks]) \
            if self.length else np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        if self._cache is None:
            self._cache = load(self.path)
        return self._cache.batch(indices)

    def __getstate__(self) -> dict[str, Any]:  # workers reopen the memory map instead of copying it
        return {"path": self.path, "_cache": None, "length": self.length, "token_counts": self.token_counts}


class EpochBatches(torch.utils.data.Sampler):
    """Index lists of one epoch, drawn from an RNG seeded by (seed, epoch), from batch `start` on.

    With `lengths`, batches group rows of similar length (see `distill.batching`); without,
    a plain permutation is cut into batches. Either way ceil(size / batch_size) batches.
    """

    def __init__(self, size: int, batch_size: int, seed: int, epoch: int, start: int = 0,
                 lengths: np.ndarray | None = None, rank: int = 0, world: int = 1) -> None:
        self.size, self.batch_size, self.seed, self.epoch, self.start = size, batch_size, seed, epoch, start
        self.lengths = lengths
        self.rank, self.world = rank, world  # distributed: this worker's share of every global batch

    def batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.lengths is not None:
            return [b.tolist() for b in length_grouped_batches(self.lengths, self.batch_size, rng)]
        order = rng.permutation(self.size)
        return [order[i : i + self.batch_size].tolist() for i in range(0, self.size, self.batch_size)]

    def __iter__(self) -> Iterator[list[int]]:
        """The epoch's global batches from `start` on; with `world` > 1 each worker's share of them
        (rows rank, rank + world, ...: every global batch is the 1-worker run's, split across workers)."""
        # a global batch smaller than the worker count repeats its last row on the idle workers
        return iter(batch[self.rank :: self.world] or batch[-1:] for batch in self.batches()[self.start :])

    def __len__(self) -> int:
        return max(0, -(-self.size // self.batch_size) - self.start)


def epoch_loader(dataset: CacheBatches, batch_size: int, seed: int, epoch: int, start: int, num_workers: int,
                 pin_memory: bool, group_by_length: bool = True, rank: int = 0,
                 world: int = 1) -> torch.utils.data.DataLoader:
    # Its own generator: creating a DataLoader iterator draws a seed, and from the global RNG that
    # draw would shift dropout masks between a resumed run and an uninterrupted one.
    return torch.utils.data.DataLoader(
        dataset, batch_size=None, sampler=EpochBatches(len(dataset), batch_size, seed, epoch, start,
                                                        dataset.token_counts if group_by_length else None, rank, world),
        num_workers=num_workers, pin_memory=pin_memory, persistent_workers=False,
        generator=torch.Generator().manual_seed(seed * 100_003 + epoch),
    )


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


def dev_batches(path: str | Path, columns: Columns, tokenizer, labels: LabelSpace, max_length: int,
                batch_size: int = 128) -> DevSet:
    """The dev file, validated like a training input (rejects counted) and its gold labels mapped
    through the teacher's label space (labels it cannot produce are refused, not scored), tokenized
    with the teacher's tokenizer."""
    text = read_text_table(path, columns)
    reasons = Counter(_reason(r["reason"]) for r in text.rejects)
    table = text.table
    ids = labels.ids(table.column("label").to_pylist(), table.column("row").to_pylist(), str(path))
    keep = [i for i, value in enumerate(ids) if value is not None]
    if len(keep) < len(ids):
        reasons["no label"] += len(ids) - len(keep)
    if not keep:
        raise InputError(f"{path}: no labelled rows to evaluate ({sum(reasons.values())} rejected)")
    texts_a = table.column("text_a").to_pylist()
    texts_b = table.column("text_b").to_pylist() if columns.text_b else None
    encoded = tokenizer([texts_a[i] for i in keep], [texts_b[i] for i in keep] if texts_b else None, truncation=True,
                        max_length=max_length, padding=False)
    gold = [ids[i] for i in keep]
    batches = []
    order = np.argsort([len(x) for x in encoded["input_ids"]], kind="stable")  # length buckets: fast eval
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size].tolist()
        features = [{k: encoded[k][r] for k in encoded.keys()} for r in rows]
        batch = dict(tokenizer.pad(features, return_tensors="pt"))
        batch["labels"] = torch.tensor([gold[r] for r in rows])
        batches.append(batch)
    return DevSet(str(path), batches, len(keep), dict(reasons))


def _reason(text: str) -> str:
    """A reject reason without its row-specific details, for counting ("text_a has N characters")."""
    return re.sub(r"\s*\(.*\)$", "", re.sub(r"\d+", "N", text))


def token_dev_batches(path: str | Path, columns: Columns, tokenizer, labels: LabelSpace, tag_names: list[str],
                      max_length: int, batch_size: int = 128) -> DevSet:
    """A token task's dev file: tagged sentences, tags mapped through the teacher's label2id (an unknown
    tag is refused in one line), aligned like the labelling stage (first piece per word, words past
    `max_length` dropped and counted). Batches: the teacher's inputs plus `word_starts` [B, W] (−1
    padded) and per-word `labels` [B, W] (−100 padded)."""
    from distill.common.tagged_input import read_tagged
    from distill.words import align_words

    tagged = read_tagged(path, columns)
    reasons = Counter(_reason(r["reason"]) for r in tagged.rejects)
    keep = [i for i, tags in enumerate(tagged.tags or []) if tags is not None]
    if len(keep) < len(tagged.rows):
        reasons["no tags"] += len(tagged.rows) - len(keep)
    if not keep:
        raise InputError(f"{path}: no tagged rows to evaluate ({sum(reasons.values())} rejected)")
    segments = "token_type_ids" in tokenizer.model_input_names
    aligned = align_words(tokenizer, [tagged.words[i] for i in keep], max_length, token_type_ids=segments)
    gold = []
    for index, kept in zip(keep, aligned.kept):
        row_tags = tagged.tags[index]
        gold.append(labels.ids([row_tags[w] for w in kept], [tagged.rows[index]] * len(kept), str(path), "tag"))
    order = np.argsort([len(x) for x in aligned.input_ids], kind="stable")
    pad = tokenizer.pad_token_id or 0
    batches = []
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size].tolist()
        width = max(len(aligned.input_ids[r]) for r in rows)
        words = max(max(len(aligned.word_starts[r]) for r in rows), 1)
        batch = {"input_ids": torch.full((len(rows), width), pad, dtype=torch.long),
                 "attention_mask": torch.zeros((len(rows), width), dtype=torch.long),
                 "word_starts": torch.full((len(rows), words), -1, dtype=torch.long),
                 "labels": torch.full((len(rows), words), -100, dtype=torch.long)}
        if segments:
            batch["token_type_ids"] = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n, w = len(aligned.input_ids[r]), len(aligned.word_starts[r])
            batch["input_ids"][i, :n] = torch.tensor(aligned.input_ids[r])
            batch["attention_mask"][i, :n] = 1
            if segments:
                batch["token_type_ids"][i, :n] = torch.tensor(aligned.token_type_ids[r])
            batch["word_starts"][i, :w] = torch.tensor(aligned.word_starts[r], dtype=torch.long)
            batch["labels"][i, :w] = torch.tensor(gold[r], dtype=torch.long)
        batches.append(batch)
    return DevSet(str(path), batches, len(keep), dict(reasons), list(tag_names),
                  aligned.truncated + aligned.without_pieces)
