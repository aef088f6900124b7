"""Documents -> wordpiece ids per sentence: spaCy's rule-based sentencizer, then the HF tokenizer.

The sentencizer (`spacy.blank("en")` + `sentencizer`) needs no model download and splits on
punctuation only, which is what BERT's sentence-per-line pre-training text amounts to. Sentences
are tokenised separately with `add_special_tokens=False`; `split_special_tokens=True` makes a
literal "[SEP]" or "[MASK]" in the text ordinary wordpieces, so the only [CLS]/[SEP] ids in a
sequence are the ones the packer inserts (and segments can be rebuilt from [SEP]). `plain`
packing does not need sentences: each document is tokenised whole.
"""

from __future__ import annotations

from distill.corpus.config import CorpusConfig

SPACY_BATCH = 256
NLP_MAX_LENGTH = 10**9  # the sentencizer keeps no per-character state: long documents are fine


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
        self.config = config
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
        flat = self.tokenize([s for sentences in per_doc for s in sentences])
        out, start = [], 0
        for sentences in per_doc:
            out.append([ids for ids in flat[start:start + len(sentences)] if ids])
            start += len(sentences)
        return out
