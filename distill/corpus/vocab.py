"""The tokenizer as the corpus stage sees it: loading, its special ids, and fingerprints of it.

`vocab_fingerprint` is what the label stage compares with the teacher's tokenizer: ids in the
shards only mean something under the vocabulary that produced them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from distill.common.config_io import ConfigError
from distill.storage.fingerprint import fingerprint_json

# Text whose wordpieces depend on casing, accents, punctuation and CJK handling: two tokenizers
# with one vocabulary but other normalisation give different ids here (part of the stage fingerprint).
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
    pairs = sorted(tokenizer.get_vocab().items())
    return fingerprint_json({"vocab": pairs, "special": special_ids(tokenizer)})


def special_ids(tokenizer) -> dict[str, Any]:
    return {
        "cls": tokenizer.cls_token_id,
        "sep": tokenizer.sep_token_id,
        "pad": tokenizer.pad_token_id,
        "mask": tokenizer.mask_token_id,
        "unk": tokenizer.unk_token_id,
        "all": sorted(int(i) for i in tokenizer.all_special_ids),
    }


def tokenization_probe(tokenizer) -> list[int]:
    """The ids of `PROBE_TEXT`: catches a changed normaliser (lower-casing, accents) that the
    vocabulary alone would not."""
    return list(tokenizer(PROBE_TEXT, add_special_tokens=False, split_special_tokens=True)["input_ids"])


def non_special_ids(tokenizer) -> np.ndarray:
    """Every vocabulary id except special tokens: what a random replacement is drawn from."""
    special = set(int(i) for i in tokenizer.all_special_ids)
    return np.array(sorted(i for i in set(tokenizer.get_vocab().values()) if i not in special), dtype=np.int64)


@dataclass(frozen=True)
class TokenizerInfo:
    """The ids the stage needs, checked once on the driver."""

    name: str
    vocab_fingerprint: str
    vocab_size: int
    cls_token_id: int
    sep_token_id: int
    mask_token_id: int | None
    pad_token_id: int | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def tokenizer_info(tokenizer, name: str, needs_mask: bool) -> TokenizerInfo:
    """Refuse (one line) a tokenizer without [CLS]/[SEP], or without [MASK] when copies are masked."""
    for role in ("cls", "sep") + (("mask",) if needs_mask else ()):
        if getattr(tokenizer, f"{role}_token_id") is None:
            raise ConfigError(f"{name!r} has no {role} token; the corpus stage needs a BERT-style tokenizer "
                              "([CLS], [SEP] and, to mask, [MASK])", "tokenizer")
    return TokenizerInfo(name, vocab_fingerprint(tokenizer), len(tokenizer.get_vocab()), tokenizer.cls_token_id,
                         tokenizer.sep_token_id, tokenizer.mask_token_id, tokenizer.pad_token_id)
