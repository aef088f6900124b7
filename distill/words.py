"""Words ↔ wordpieces for token tasks, aligned one way for labelling, the dev set and fine-tuning: each
word's tag and logits sit at its first piece (BERT's CoNLL setup), so the student is scored on exactly
the words the teacher labelled."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class WordAlignment:
    """One tokenized batch of sentences; `kept[i]` are the indices of sentence i's words that have a piece."""

    input_ids: list[list[int]]
    word_starts: list[list[int]]  # index in input_ids of each kept word's first piece
    kept: list[list[int]]  # word indices (into the sentence) of the kept words, same length as word_starts
    token_type_ids: list[list[int]] | None = None
    truncated: int = 0  # words cut by max_length
    without_pieces: int = 0  # words the tokenizer turns into nothing (e.g. only control characters)
    words: int = 0  # words in, before dropping


def align_words(tokenizer, sentences: Sequence[Sequence[str]], max_length: int,
                token_type_ids: bool = False) -> WordAlignment:
    """Tokenize pre-split words (`is_split_into_words=True`, truncated at `max_length`) and find each
    word's first piece. Needs a fast tokenizer (its `word_ids`)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{type(tokenizer).__name__} is not a fast tokenizer: token tasks need word_ids() "
                         "(save the teacher's tokenizer with tokenizer.json)")
    sentences = [list(s) for s in sentences]
    if not sentences:
        return WordAlignment([], [], [], [] if token_type_ids else None)
    encoded = tokenizer(sentences, is_split_into_words=True, truncation=True, max_length=max_length, padding=False,
                        return_attention_mask=False, return_token_type_ids=token_type_ids)
    out = WordAlignment(encoded["input_ids"], [], [], encoded["token_type_ids"] if token_type_ids else None)
    for row, words in enumerate(sentences):
        # word index -> position of its first piece (reversed: the first position is written last)
        starts = {word: at for at, word in reversed(list(enumerate(encoded.word_ids(row)))) if word is not None}
        kept = sorted(starts)
        out.kept.append(kept)
        out.word_starts.append([starts[w] for w in kept])
        full = len(encoded["input_ids"][row]) >= max_length
        last = kept[-1] if kept else -1
        dropped = [w for w in range(len(words)) if w not in starts]
        cut = sum(1 for w in dropped if w > last) if full else 0
        out.truncated += cut
        out.without_pieces += len(dropped) - cut
        out.words += len(words)
    return out
