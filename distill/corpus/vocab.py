"""The tokenizer as the corpus stage sees it: loading, its special ids, fingerprints of it (the label stage
compares `vocab_fingerprint` with the teacher's: ids only mean something under their vocabulary), and
documents -> wordpiece ids per sentence: spaCy's rule-based sentencizer (no model download; it splits on
punctuation, as BERT's sentence-per-line text does), then the tokenizer. `split_special_tokens` makes a
literal "[SEP]" in the text ordinary wordpieces, so the only [CLS]/[SEP] ids are the packer's.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

import numpy as np

from distill.common.config_io import ConfigError
from distill.corpus.config import CorpusConfig
from distill.storage.fingerprint import fingerprint_json

SPACY_BATCH = 256
NLP_MAX_LENGTH = 10**9  # the sentencizer keeps no per-character state: long documents are fine
# Wordpieces that depend on casing, accents, punctuation and CJK handling (part of the stage fingerprint)
PROBE_TEXT = "Héllo WORLD, naïve CAFÉ's 2024-05-01: x+y=z! 東京 ｆｕｌｌｗｉｄｔｈ [SEP] don't"


def load_tokenizer(name: str | None, trust_remote_code: bool = False):
    """A Hugging Face tokenizer from a directory or hub name; one-line ConfigError if it cannot load."""
    if not name:
        raise ConfigError("no tokenizer given (a tokenizer directory or hub name, --tokenizer)", "tokenizer")
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
    except Exception as err:  # noqa: BLE001 - missing files, offline hub and remote-code refusals differ in type
        reason = " ".join(str(err).split())[:200]
        raise ConfigError(f"{name!r} could not be loaded as a tokenizer ({reason})", "tokenizer") from None
    tokenizer.model_max_length = 1 << 40  # documents are cut by the packer, not the tokenizer (and no warning)
    return tokenizer


def vocab_fingerprint(tokenizer) -> str:
    """sha256 of the vocabulary (sorted (token, id) pairs) and the special token ids."""
    special = {"cls": tokenizer.cls_token_id, "sep": tokenizer.sep_token_id, "pad": tokenizer.pad_token_id,
               "mask": tokenizer.mask_token_id, "unk": tokenizer.unk_token_id,
               "all": sorted(int(i) for i in tokenizer.all_special_ids)}
    return fingerprint_json({"vocab": sorted(tokenizer.get_vocab().items()), "special": special})


def tokenization_probe(tokenizer) -> list[int]:
    """The ids of `PROBE_TEXT`: catches a changed normaliser that the vocabulary alone would not."""
    return list(tokenizer(PROBE_TEXT, add_special_tokens=False, split_special_tokens=True)["input_ids"])


def non_special_ids(tokenizer) -> np.ndarray:
    """Every vocabulary id except special tokens: what a random replacement is drawn from."""
    special = set(int(i) for i in tokenizer.all_special_ids)
    return np.array(sorted(i for i in set(tokenizer.get_vocab().values()) if i not in special), dtype=np.int64)


def tokenizer_facts(tokenizer, name: str, needs_mask: bool) -> dict[str, Any]:
    """The manifest's `tokenizer`; refuses (one line) one without [CLS]/[SEP], or [MASK] when copies are masked."""
    for role in ("cls", "sep") + (("mask",) if needs_mask else ()):
        if getattr(tokenizer, f"{role}_token_id") is None:
            raise ConfigError(f"{name!r} has no {role} token; the corpus stage needs a BERT-style tokenizer "
                              "([CLS], [SEP] and, to mask, [MASK])", "tokenizer")
    return {"name": name, "vocab_fingerprint": vocab_fingerprint(tokenizer), "vocab_size": len(tokenizer.get_vocab()),
            **{f"{role}_token_id": getattr(tokenizer, f"{role}_token_id") for role in ("mask", "pad", "cls", "sep")}}


def load_sentencizer():
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.max_length = NLP_MAX_LENGTH
    return nlp


class TextEncoder:
    """Loaded once per worker: the tokenizer and (for `pair`) the sentencizer."""

    def __init__(self, tokenizer, config: CorpusConfig) -> None:
        self.tokenizer = tokenizer
        self.nlp = load_sentencizer() if config.is_pair else None

    def sentences(self, documents: list[str]) -> list[list[str]]:
        """Each document's sentences (a document is one sentence under `plain` packing)."""
        if self.nlp is None:
            return [[doc] for doc in documents]
        return [[sent.text for sent in doc.sents] for doc in self.nlp.pipe(documents, batch_size=SPACY_BATCH)]

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        encoded = self.tokenizer(texts, add_special_tokens=False, split_special_tokens=True,
                                 return_attention_mask=False, return_token_type_ids=False)
        return [list(ids) for ids in encoded["input_ids"]]

    def token_sentences(self, documents: list[str]) -> list[list[list[int]]]:
        """For each document, its sentences' wordpiece ids (empty sentences left out)."""
        per_doc = self.sentences(documents)
        flat = iter(self.tokenize([s for sentences in per_doc for s in sentences]))
        return [[ids for ids in islice(flat, len(sentences)) if ids] for sentences in per_doc]
