"""TinyBERT's reference data augmentation, re-implemented here only to be timed against the stage.

Not part of the pipeline and not used by it: `bench/augment.py` runs it on the same sentences,
masked LM and GloVe file as the stage and prints the ratio of the two times.

It mirrors Jiao et al. 2020, Algorithm 1, as their release (`data_augmentation.py`) runs it:
  * the first 100 000 words of the GloVe file in one L2-normalised float64 matrix (the release
    builds it with `np.zeros`, i.e. float64);
  * per sentence, per word that is replaceable (letters only, not a stop word):
    - a single wordpiece: ONE masked-LM forward at batch size 1 on `[CLS] masked sentence [SEP]
      original sentence [SEP]`, the LM head over every token (`model(**enc).logits`), top-K at the
      mask (float32, as the release ran; under `torch.inference_mode()`, which the release did not
      use: that only makes the baseline faster);
    - several wordpieces: a full-vocabulary dot product for THIS occurrence (no cache), -inf at the
      word itself, a full `argsort`, top-K;
    - no candidate: the word itself (as the release);
  * N = 20 samples, each word replaced with probability p = 0.4 by `random.choice` of its list.

Kept the same as the stage on purpose, so counts and candidates compare one to one: words are
split by the stage's spaCy tokenizer (`augment.words`), `replaceable` and the single-piece test
are the stage's, K = 15, candidates that are `##` pieces or the word itself are dropped from the
top K + 1, and a word is looked up in GloVe as written, then lower-cased.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from augment.rules.glove import load_glove
from augment.tinybert import replaceable
from augment.words import Words, detokenize, load_spacy, split_texts

REFERENCE_GLOVE_WORDS = 100_000  # the release reads only the first 100 000 words ("for fast retrieval")


@dataclass
class ReferenceResult:
    sentences: int  # all input sentences
    timed_sentences: int  # the systematic sample that actually ran (every `every`-th)
    every: int
    queries: int  # masked-LM forwards over ALL sentences (counted, not all run when sampled)
    glove_lookups: int  # full-vocabulary dot products over all sentences
    split_seconds: float  # spaCy word split of all sentences
    work_seconds: float  # candidates + samples of the timed sentences
    candidates: dict[int, list[list[str]]] = field(default_factory=dict)  # sentence index -> per word
    samples: dict[int, list[str]] = field(default_factory=dict)

    @property
    def estimated(self) -> bool:
        return self.timed_sentences < self.sentences

    @property
    def seconds(self) -> float:
        """Whole run; when sampled, the sample's work scaled linearly by the sentence count."""
        return self.split_seconds + self.work_seconds * self.sentences / max(1, self.timed_sentences)


class ReferenceTinyBert:
    """One model, one GloVe matrix, one sentence at a time: the reference algorithm's cost."""

    def __init__(self, model_dir: str | Path, glove_path: str | Path | None, spacy_model: str,
                 top_k: int = 15, n_aug: int = 20, p: float = 0.4, seed: int = 0, device: str = "cpu") -> None:
        """`device`: where the masked LM runs (the release ran on one GPU); GloVe stays in NumPy, as there."""
        import torch
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        started = time.perf_counter()
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForMaskedLM.from_pretrained(model_dir, dtype=torch.float32).eval().to(device)
        self.device = device
        self.model_seconds = time.perf_counter() - started
        started = time.perf_counter()
        words, matrix = load_glove(glove_path, max_words=REFERENCE_GLOVE_WORDS) if glove_path else ([], None)
        self.glove_words = words  # `matrix` is already L2-normalised; the release's matrix is float64
        self.glove = matrix.astype(np.float64) if matrix is not None else None
        self.glove_index = {w: i for i, w in enumerate(words)}
        self.glove_seconds = time.perf_counter() - started  # None glove_path: masked-LM queries only
        self.nlp = load_spacy(spacy_model, with_tags=False)
        self.top_k, self.n_aug, self.p = top_k, n_aug, p
        self.rng = random.Random(seed)

    def split(self, sentences: list[str]) -> list[Words]:
        return split_texts(self.nlp, sentences, None, 256)

    def kind(self, word: str) -> str | None:
        """Which candidates a word gets ("mlm", "glove", or None: kept), decided as the stage decides."""
        if not replaceable(word):
            return None
        return "mlm" if len(self.tokenizer.tokenize(word)) == 1 else "glove"

    def _glove_row(self, word: str) -> int | None:
        index = self.glove_index.get(word)
        return self.glove_index.get(word.lower()) if index is None else index

    def count(self, all_words: list[Words]) -> tuple[int, int]:
        """(masked-LM queries, GloVe dot products) the reference would run on these sentences."""
        kinds = [(self.kind(tok), tok) for words in all_words for tok in words.tokens]
        glove = sum(1 for kind, tok in kinds if kind == "glove" and self._glove_row(tok) is not None)
        return sum(1 for kind, _ in kinds if kind == "mlm"), glove

    def mlm_candidates(self, words: Words, index: int) -> list[str]:
        """One forward at batch size 1, LM head over every token, top-K at the mask."""
        torch, tok = self.torch, self.tokenizer
        tokens = list(words.tokens)
        original = tokens[index]
        tokens[index] = tok.mask_token
        enc = tok(detokenize(tokens, words.spaces), words.text(), return_tensors="pt", truncation=True,
                  max_length=512).to(self.device)
        logits = self.model(**enc).logits
        where = (enc["input_ids"][0] == tok.mask_token_id).nonzero().cpu()
        if len(where) == 0:
            return []
        top = torch.topk(logits[0, int(where[0, 0])], self.top_k + 1).indices.tolist()
        found = [t for t in tok.convert_ids_to_tokens(top) if not t.startswith("##") and t != original.lower()]
        return found[: self.top_k]

    def glove_candidates(self, word: str) -> list[str]:
        """A full-vocabulary dot product and argsort for this occurrence (no cache, as the release)."""
        row = self._glove_row(word)
        if row is None:
            return []
        scores = self.glove @ self.glove[row]
        scores[row] = -np.inf
        return [self.glove_words[i] for i in np.argsort(-scores)[: self.top_k]]

    def augment(self, words: Words) -> tuple[list[list[str]], list[str]]:
        """Candidates per word, then the N samples (distinct texts, original first)."""
        candidates: list[list[str]] = [[] for _ in words.tokens]
        for i, token in enumerate(words.tokens):
            kind = self.kind(token)
            if kind is not None:
                found = self.mlm_candidates(words, i) if kind == "mlm" else self.glove_candidates(token)
                candidates[i] = found or [token]
        samples = [words.text()]
        for _ in range(self.n_aug):
            tokens = list(words.tokens)
            for i, options in enumerate(candidates):
                if options:
                    choice = self.rng.choice(options)
                    if self.rng.random() < self.p:
                        tokens[i] = choice
            text = detokenize(tokens, words.spaces)
            if text not in samples:
                samples.append(text)
        return candidates, samples

    def run(self, sentences: list[str], every: int = 1) -> ReferenceResult:
        """Split all sentences, count all queries, run every `every`-th sentence (1 = all)."""
        started = time.perf_counter()
        all_words = self.split(sentences)
        split_seconds = time.perf_counter() - started
        queries, lookups = self.count(all_words)
        timed = list(range(0, len(all_words), every))
        result = ReferenceResult(len(sentences), len(timed), every, queries, lookups, split_seconds, 0.0)
        started = time.perf_counter()
        with self.torch.inference_mode():
            for s in timed:
                result.candidates[s], result.samples[s] = self.augment(all_words[s])
        result.work_seconds = time.perf_counter() - started
        return result
