"""Held-out sets for SST-2 that are never seen in training, as TSV files with `train.tsv`'s header.

GLUE's SST-2 `train.tsv` holds every phrase of each parse tree, shuffled; its dev set holds whole
sentences only. Two splits:

* `write_split` (bench/experiments/sst2_scale.py), shaped like the official dev set. A row is
  *maximal* when no longer training row contains it (whole words): those are the sentences (6 886
  of 67 349 rows, 19 words on average). The held-out test sentences are the last `sentences`
  maximal rows in file order, the `validation` sentences the maximal rows before them, and every
  training row inside one of them (each of its sub-phrases, and copies of it) leaves the training
  set, so no part of a held-out sentence is trained on. The dropped sub-phrases of the test
  sentences, unseen too, give the second, phrase-level test set at no cost in training rows.
* `tail_split` (bench/experiments/quality.py, mlm_modes.py): the last `dev_rows` rows (phrases) are
  held out, and every training row that contains one of them or lies inside one is dropped.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass
from pathlib import Path

from bench.common import write_if_changed


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
    sentences: list[int]  # the held-out whole test sentences
    phrases: list[int]  # held-out phrases: training rows inside a test sentence (sampled)
    dropped: int  # training rows removed because they lie inside a held-out sentence
    maximal: int  # maximal rows in the whole file
    validation: list[int]  # held-out whole sentences that make the choices (before the test ones)


def _inside(texts: list[str], rows: list[int]) -> set[str]:
    return {span for i in rows for span in spans(texts[i], proper=False)}


def sentence_split(texts: list[str], sentences: int, phrases: int, seed: int = 0, validation: int = 0) -> SentenceSplit:
    """Hold out the last `sentences` maximal rows (test) and the `validation` ones before them, and drop
    every row inside them from training; up to `phrases` of the rows inside a test sentence (distinct
    texts, a seeded sample) are the phrase set."""
    maximal = maximal_rows(texts)
    if len(maximal) <= sentences + validation:
        raise ValueError(f"only {len(maximal)} whole sentences; cannot hold out {sentences} + {validation}")
    held, chosen = maximal[-sentences:], maximal[len(maximal) - sentences - validation:len(maximal) - sentences]
    held_set, inside_test = set(held), _inside(texts, held)
    inside = inside_test | _inside(texts, chosen)
    train = [i for i, text in enumerate(texts) if text not in inside]
    held_texts = {texts[i] for i in held}
    first_of: dict[str, int] = {}
    for i, text in enumerate(texts):
        if text in inside_test and i not in held_set and text not in held_texts:
            first_of.setdefault(text, i)
    candidates = sorted(first_of.values())
    picked = sorted(random.Random(seed).sample(candidates, min(phrases, len(candidates))))
    return SentenceSplit(train, held, picked, len(texts) - len(train) - len(held) - len(chosen), len(maximal), chosen)


def _read(source: Path) -> tuple[str, list[str], list[str]]:
    """Header, rows and each row's text (`sentence<TAB>label`)."""
    lines = Path(source).read_text(encoding="utf-8").splitlines()
    return lines[0], lines[1:], [row.rsplit("\t", 1)[0] for row in lines[1:]]


def _write(out: Path, header: str, files: dict[str, list[str]]) -> dict[str, Path]:
    return {name: write_if_changed(out / f"{name}.tsv", "\n".join([header, *rows]) + "\n")
            for name, rows in files.items()}


def write_split(source: Path, out: Path, sentences: int, phrases: int, train_rows: int | None = None,
                validation: int = 0) -> tuple[dict[str, Path], SentenceSplit]:
    """TSV files train / held-out sentences / held-out phrases (/ validation sentences) under `out`; a file
    is rewritten only when its content changes, so a rerun keeps the caches built on it."""
    header, body, texts = _read(source)
    split = sentence_split(texts, sentences, phrases, validation=validation)
    train = split.train[:train_rows] if train_rows is not None else split.train
    named = [("train", train), ("sentences", split.sentences), ("phrases", split.phrases)]
    files = {name: [body[i] for i in rows] for name, rows in named + ([("validation", split.validation)]
                                                                       if validation else [])}
    return _write(out, header, files), split


def overlapping(train_texts: list[str], dev_texts: list[str]) -> set[int]:
    """Indices of training phrases that contain a dev phrase or lie inside one.

    The last rows' parents and children are in the rest: 85 % of the last 2 000 rows occur inside
    a training row, and a BiLSTM trained on gold labels alone then beats the teacher on them by
    memorising. Removing these rows from training makes the held-out rows unseen text."""
    dev_blob = "\n".join(f" {t} " for t in dev_texts)
    inside_dev = {i for i, t in enumerate(train_texts) if f" {t} " in dev_blob}
    starts, parts, offset = [], [], 0
    for t in train_texts:
        starts.append(offset)
        parts.append(f" {t} ")
        offset += len(t) + 3  # the two spaces and the newline
    train_blob = "\n".join(parts)
    containing = set()
    for t in dev_texts:
        needle, at = f" {t} ", 0
        while (at := train_blob.find(needle, at)) != -1:
            containing.add(bisect.bisect_right(starts, at) - 1)
            at += 1
    return inside_dev | containing


def tail_split(source: Path, out: Path, dev_rows: int, train_rows: int | None = None) -> tuple[Path, Path, int]:
    """`out/dev.tsv` (the last `dev_rows` rows) and `out/train.tsv` (the rest, minus rows overlapping
    dev, at most `train_rows`); also returns how many overlapping rows were dropped."""
    header, body, texts = _read(source)
    dropped = overlapping(texts[:-dev_rows], texts[-dev_rows:])
    train = [r for i, r in enumerate(body[:-dev_rows]) if i not in dropped][:train_rows]
    paths = _write(out, header, {"train": train, "dev": body[-dev_rows:]})
    return paths["train"], paths["dev"], len(dropped)


def head(path: Path, rows: int) -> Path:
    """The first `rows` rows of a TSV, beside it (`<stem>-first<rows>.tsv`)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return write_if_changed(path.with_name(f"{path.stem}-first{rows}.tsv"), "\n".join(lines[: rows + 1]) + "\n")
