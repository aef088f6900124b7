"""Word splitting for the rules: spaCy tokens with their trailing whitespace.

Rules replace or drop whole tokens and we rebuild the text from (token, trailing whitespace)
pairs, so punctuation keeps its original spacing ("great, fun" stays "great, fun"; SST-2's
pre-tokenised "great , fun" stays as it was) and so does every other whitespace between two
words: runs of spaces, tabs, line breaks ("\r\n" too) are kept exactly as in the input. Only
whitespace at the start and end of a rebuilt text is dropped. (Original rows never go through
here: they are the input text itself.)
The same spaCy pipeline supplies POS tags when the `pos` rule is on (`nlp.pipe`, batched,
only tok2vec + tagger + attribute_ruler enabled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import pyarrow as pa

# Components the POS tags need; everything else in an English pipeline is excluded on load.
TAGGING_COMPONENTS = ("tok2vec", "tagger", "attribute_ruler")
# Never needed: excluded at load time so their weights are not even read.
UNUSED_COMPONENTS = ("parser", "ner", "lemmatizer", "senter", "textcat", "textcat_multilabel", "entity_ruler", "spancat")


@dataclass
class Words:
    """One side of an example, split into tokens. `tags` is empty when POS tags are off."""

    tokens: list[str]
    spaces: list[str | bool]  # the whitespace after each token, exactly; True/False mean " "/"" (older callers)
    tags: list[str]

    def text(self) -> str:
        return detokenize(self.tokens, self.spaces)


def gap(space: str | bool) -> str:
    """The whitespace a `spaces` entry stands for."""
    if isinstance(space, str):
        return space
    return " " if space else ""


def detokenize(tokens: list[str], spaces: list[str | bool]) -> str:
    """Tokens joined by their own trailing whitespace; the ends of the text are stripped."""
    return "".join(tok + gap(space) for tok, space in zip(tokens, spaces)).strip()


def load_spacy(name: str, with_tags: bool):
    """Load an installed spaCy pipeline keeping only what tokenisation (and tagging) need."""
    import spacy

    nlp = spacy.load(name, exclude=list(UNUSED_COMPONENTS) + ([] if with_tags else list(TAGGING_COMPONENTS)))
    keep = set(TAGGING_COMPONENTS) if with_tags else set()
    disable = [pipe for pipe in nlp.pipe_names if pipe not in keep]
    if with_tags and "tagger" not in nlp.pipe_names:
        raise ValueError(f"spaCy pipeline {name!r} has no tagger; the pos rule needs one")
    nlp.select_pipes(disable=disable)
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
    return {
        f"tokens_{side}": pa.array([w.tokens if w else None for w in words], pa.list_(pa.string())),
        f"spaces_{side}": pa.array([[gap(s) for s in w.spaces] if w else None for w in words], pa.list_(pa.string())),
        f"tags_{side}": pa.array([w.tags if w else None for w in words], pa.list_(pa.string())),
    }


def words_from_row(row: dict, side: str) -> Words | None:
    tokens = row.get(f"tokens_{side}")
    if tokens is None:
        return None
    return Words(list(tokens), list(row[f"spaces_{side}"]), list(row[f"tags_{side}"] or []))
