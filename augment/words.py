"""Word splitting for the rules: spaCy tokens with their trailing whitespace, so a text rebuilt after
rules replaced or dropped tokens keeps punctuation and every whitespace between words exactly (only its
ends are stripped). The same pipeline supplies POS tags when the `pos` rule is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import pyarrow as pa

# The components POS tags need; the unused ones are excluded at load time, so their weights are not even read.
TAGGING_COMPONENTS = ("tok2vec", "tagger", "attribute_ruler")
UNUSED_COMPONENTS = ("parser", "ner", "lemmatizer", "senter", "textcat", "textcat_multilabel", "entity_ruler",
                     "spancat")


@dataclass
class Words:
    """One side of an example, split into tokens. `tags` is empty when POS tags are off."""

    tokens: list[str]
    spaces: list[str]  # the whitespace after each token, exactly
    tags: list[str]

    def text(self) -> str:
        return detokenize(self.tokens, self.spaces)


def detokenize(tokens: list[str], spaces: list[str]) -> str:
    """Tokens joined by their own trailing whitespace; the ends of the text are stripped."""
    return "".join(tok + space for tok, space in zip(tokens, spaces)).strip()


def load_spacy(name: str, with_tags: bool):
    """Load an installed spaCy pipeline keeping only what tokenisation (and tagging) need."""
    import spacy

    nlp = spacy.load(name, exclude=list(UNUSED_COMPONENTS) + ([] if with_tags else list(TAGGING_COMPONENTS)))
    if with_tags and "tagger" not in nlp.pipe_names:
        raise ValueError(f"spaCy pipeline {name!r} has no tagger; the pos rule needs one")
    nlp.select_pipes(disable=[pipe for pipe in nlp.pipe_names if not with_tags or pipe not in TAGGING_COMPONENTS])
    return nlp


def doc_to_words(doc, tag_attr: str | None) -> Words:
    """spaCy's whitespace tokens ("\n", a second space) join the preceding token's trailing
    whitespace, so `"".join(token + space)` gives back the text after its leading whitespace."""
    tokens, spaces, tags = [], [], []
    for token in doc:
        if token.is_space:
            if spaces:
                spaces[-1] += token.text_with_ws
            continue
        tokens.append(token.text)
        spaces.append(token.whitespace_)
        if tag_attr:
            tags.append(getattr(token, tag_attr))
    return Words(tokens, spaces, tags)


def split_texts(nlp, texts: Iterable[str], tag_attr: str | None, batch_size: int) -> list[Words]:
    docs = nlp.pipe(texts, batch_size=batch_size) if tag_attr else nlp.tokenizer.pipe(texts, batch_size=batch_size)
    return [doc_to_words(doc, tag_attr) for doc in docs]


def words_columns(side: str, words: list[Words | None]) -> dict[str, pa.Array]:
    """Arrow columns `<field>_<side>` for a list of Words (None for a missing text_b)."""
    return {f"{field}_{side}": pa.array([getattr(w, field) if w else None for w in words], pa.list_(pa.string()))
            for field in ("tokens", "spaces", "tags")}


def words_from_row(row: dict, side: str) -> Words | None:
    if row.get(f"tokens_{side}") is None:
        return None
    return Words(list(row[f"tokens_{side}"]), list(row[f"spaces_{side}"]), list(row[f"tags_{side}"] or []))
