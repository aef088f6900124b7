"""Held-out sets for SST-2 shaped like the official dev set: whole sentences, never seen in training.

GLUE's SST-2 `train.tsv` holds every phrase of each parse tree, shuffled; its dev set holds whole
sentences only. A row is *maximal* when no longer training row contains it (whole words): those
are the sentences (6 886 of 67 349 rows, 19 words on average). The held-out sentences are the
last `sentences` maximal rows in file order, and every training row inside one of them (each of
its sub-phrases, and copies of it) leaves the training set, so no part of a held-out sentence is
trained on. Those dropped sub-phrases, unseen too, give the second, phrase-level held-out set at
no cost in training rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path


def spans(text: str, proper: bool) -> set[str]:
    """Every run of whole words of `text` (without `text` itself when `proper`)."""
    words = text.split(" ")
    n = len(words)
    return {" ".join(words[i:j]) for i in range(n) for j in range(i + 1, n + 1) if not (proper and j - i == n)}


def maximal_rows(texts: list[str]) -> list[int]:
    """Indices of the rows that no longer row contains, in file order."""
    inside_longer: set[str] = set()
    for text in set(texts):
        inside_longer |= spans(text, proper=True)
    return [i for i, text in enumerate(texts) if text not in inside_longer]


@dataclass
class SentenceSplit:
    train: list[int]  # row indices left for training
    sentences: list[int]  # the held-out whole sentences
    phrases: list[int]  # held-out phrases: training rows inside a held-out sentence (sampled)
    dropped: int  # training rows removed because they lie inside a held-out sentence
    maximal: int  # maximal rows in the whole file


def sentence_split(texts: list[str], sentences: int, phrases: int, seed: int = 0) -> SentenceSplit:
    """Hold out the last `sentences` maximal rows and drop every row inside them from training;
    up to `phrases` of the dropped rows (distinct texts, a seeded sample) are the phrase set."""
    maximal = maximal_rows(texts)
    if len(maximal) <= sentences:
        raise ValueError(f"only {len(maximal)} whole sentences; cannot hold out {sentences}")
    held = maximal[-sentences:]
    held_set = set(held)
    inside: set[str] = set()
    for i in held:
        inside |= spans(texts[i], proper=False)
    train = [i for i, text in enumerate(texts) if text not in inside]
    held_texts = {texts[i] for i in held}
    first_of: dict[str, int] = {}
    for i, text in enumerate(texts):
        if text in inside and i not in held_set and text not in held_texts:
            first_of.setdefault(text, i)
    candidates = sorted(first_of.values())
    picked = sorted(random.Random(seed).sample(candidates, min(phrases, len(candidates))))
    return SentenceSplit(train, held, picked, len(texts) - len(train) - len(held), len(maximal))


def write_split(source: Path, out: Path, sentences: int, phrases: int, train_rows: int | None = None
                ) -> tuple[dict[str, Path], SentenceSplit]:
    """TSV files train / held-out sentences / held-out phrases (the source's header) under `out`;
    a file is rewritten only when its content changes, so a rerun keeps the caches built on it."""
    lines = Path(source).read_text(encoding="utf-8").splitlines()
    header, body = lines[0], lines[1:]
    texts = [row.rsplit("\t", 1)[0] for row in body]
    split = sentence_split(texts, sentences, phrases)
    train = split.train[:train_rows] if train_rows is not None else split.train
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, rows in (("train", train), ("sentences", split.sentences), ("phrases", split.phrases)):
        path = out / f"{name}.tsv"
        content = "\n".join([header, *(body[i] for i in rows)]) + "\n"
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
        paths[name] = path
    return paths, split
