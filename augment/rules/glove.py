"""glove — TinyBERT (Jiao et al. 2020, §3.2, Algorithm 1): a word that splits into several wordpieces
gets its K = 15 nearest GloVe neighbours by cosine similarity (any `word v1 ... vd` text file), not
itself, in its title case. Unlike the reference, the file is parsed once per machine into a
memory-mapped cache, and neighbours are computed once per distinct word (docs/augment.md).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from augment.rules.mlm import match_case
from augment.rules.registry import register_rule
from distill.common.config_io import NonEmptyStr, PositiveInt
from distill.storage.atomic import commit_file, write_bytes_atomic
from distill.storage.fingerprint import fingerprint_json, hash_file_sampled

log = logging.getLogger(__name__)
_LINES_PER_PARSE = 50_000
_SIMILARITY_BUDGET = 1 << 25  # floats per similarity chunk (128 MiB): bounds memory for 2M-word files


def load_glove(path: str | Path, max_words: int | None = None) -> tuple[list[str], np.ndarray]:
    """(words, L2-normalised float32 matrix) of a GloVe/word2vec text file. Lines split from the right (a few
    glove.840B words hold spaces); a word2vec "count dim" header is skipped; a repeated word keeps its first vector."""
    words: dict[str, None] = {}  # in file order
    blocks: list[np.ndarray] = []
    dim = None
    pending: list[str] = []

    def flush() -> None:
        if pending:
            values = np.fromstring(" ".join(pending), dtype=np.float32, sep=" ")
            blocks.append(values.reshape(len(pending), dim))
            pending.clear()

    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if dim is None:
                if len(parts) == 2 and all(p.isdigit() for p in parts):
                    continue  # word2vec header
                dim = len(parts) - 1
            if len(parts) < dim + 1:
                raise ValueError(f"{path}: line {number}: expected a word and {dim} numbers, got {len(parts)} fields")
            word = " ".join(parts[: len(parts) - dim])
            if word in words:
                continue
            words[word] = None
            pending.append(" ".join(parts[len(parts) - dim :]))
            if len(pending) >= _LINES_PER_PARSE:
                flush()
            if max_words and len(words) >= max_words:
                break
    flush()
    if not words:
        raise ValueError(f"{path}: no vectors found")
    matrix = np.concatenate(blocks)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix /= np.maximum(norms, 1e-12)
    return list(words), matrix


def load_glove_cached(path: str | Path, max_words: int | None = None) -> tuple[list[str], np.ndarray]:
    """Parse the text file once per machine (glove.840B: minutes, 2.6 GB of RAM) into
    `$DISTILL_DATA_CACHE/glove/<key>/vectors.npy` (default ~/.cache/distill-data), then memory-map it:
    the workers of a node share one copy in the page cache."""
    key = fingerprint_json({"file": hash_file_sampled(path), "max_words": max_words, "layout": 1})[:16]
    directory = Path(os.environ.get("DISTILL_DATA_CACHE", Path.home() / ".cache" / "distill-data")) / "glove" / key
    words_path, vectors_path = directory / "words.txt", directory / "vectors.npy"
    if not vectors_path.exists():  # vectors are committed last: their presence means complete
        words, matrix = load_glove(path, max_words)
        directory.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(words_path, "\n".join(words).encode("utf-8"))

        def save(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.save(handle, matrix)

        commit_file(vectors_path, save)
        log.info("converted %s into %s", path, directory)
    words = words_path.read_text(encoding="utf-8").split("\n")
    return words, np.load(vectors_path, mmap_mode="r")


@register_rule("glove")
@dataclass
class GloveRule:
    path: NonEmptyStr | None = None  # glove.840B.300d.txt in TinyBERT; required
    top_k: PositiveInt = 15  # K, TinyBERT reference release
    max_words: PositiveInt | None = None  # None = whole file (the reference read only the first 100 000)
    cache: dict[str, list[str]] = field(default_factory=dict, repr=False, compare=False)

    def setup(self) -> None:
        if getattr(self, "_matrix", None) is not None:
            return
        if not self.path:
            raise ValueError("glove rule needs a path to a GloVe text file (rules.glove.path)")
        self._words, self._matrix = load_glove_cached(self.path, self.max_words)
        self._index = {word: i for i, word in enumerate(self._words)}
        log.info("loaded %d GloVe vectors of dim %d from %s", len(self._words), self._matrix.shape[1], self.path)

    def neighbours(self, words: list[str]) -> dict[str, list[str]]:
        """K nearest neighbours of each distinct word, computed once and cached."""
        todo = sorted(set(words) - self.cache.keys())
        looked_up = [(w, self._index.get(w, self._index.get(w.lower()))) for w in todo]
        self.cache.update((w, []) for w, index in looked_up if index is None)
        known = [(w, index) for w, index in looked_up if index is not None]
        chunk = max(1, _SIMILARITY_BUDGET // len(self._words))
        fetch = min(self.top_k * 2 + 8, len(self._words))
        for start in range(0, len(known), chunk):
            part = known[start : start + chunk]
            rows = np.array([i for _, i in part])
            sims = self._matrix[rows] @ self._matrix.T
            sims[np.arange(len(part)), rows] = -np.inf
            top = np.argpartition(-sims, fetch - 1, axis=1)[:, :fetch]
            for (word, _), candidates, scores in zip(part, top, np.take_along_axis(sims, top, axis=1)):
                ranked = candidates[np.lexsort((candidates, -scores))]  # by score, ties by index
                self.cache[word] = self._filter(ranked, word)
        return {w: self.cache[w] for w in words}

    def _filter(self, ranked: np.ndarray, word: str) -> list[str]:
        """Alphabetic neighbours other than the word itself, in its case, each once, the K closest."""
        candidates = (self._words[index] for index in ranked)
        kept = (match_case(c, word) for c in candidates if c.lower() != word.lower() and c.isalpha())
        return list(dict.fromkeys(kept))[: self.top_k]

    def identity(self) -> dict[str, Any]:
        return {"path": str(self.path), "fingerprint": hash_file_sampled(self.path) if self.path else None}
