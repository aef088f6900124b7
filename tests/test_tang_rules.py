"""Statistics of Tang et al.'s rules (mask / pos / ngram) and their combination."""

from __future__ import annotations

import random
from collections import Counter
from functools import partial

import pyarrow as pa
import pytest

from augment.augmenter import TextRows, example_rng
from augment.rules import build_rule
from augment.rules.pos import UnigramTables
from augment.tang import TangConfig, TangRules, tang_samples
from augment.words import Words, split_texts, words_columns
from tests.conftest import SAMPLES

SENTENCE = Words(
    tokens="the quiet film moves slowly but its ending lands with real force and grace".split(),
    spaces=[" "] * 13 + [""],
    tags=["DT", "JJ", "NN", "VBZ", "RB", "CC", "PRP$", "NN", "VBZ", "IN", "JJ", "NN", "CC", "NN"],
)


def test_mask_rate_matches_p_mask():
    rules = TangRules(mask=build_rule("mask", {"p": 0.1}))
    rng = random.Random(1)
    masked = total = 0
    for _ in range(3000):
        text, applied = rules.sample_side(SENTENCE, rng)
        masked += text.split().count("[MASK]")
        total += len(SENTENCE.tokens)
    rate = masked / total
    assert abs(rate - 0.1) < 0.01, rate  # 42 000 Bernoulli(0.1) draws: sd ~0.0015


@pytest.fixture(scope="module")
def sample_tables(nlp_tagger):
    import csv

    with open(SAMPLES / "sentiment.csv", encoding="utf-8") as handle:
        texts = [row["sentence"] for row in csv.DictReader(handle)]
    words = split_texts(nlp_tagger, texts, "tag_", batch_size=64)
    counts = Counter((tag, word) for w in words for word, tag in zip(w.tokens, w.tags))  # plain-Python oracle
    block = pa.table({**words_columns("a", words), **words_columns("b", [None] * len(words))})
    return UnigramTables(TextRows.pos_counts([block])), counts, words


def test_pos_replacements_keep_the_tag_and_follow_unigram_counts(sample_tables):
    tables, counts, words = sample_tables
    rule = build_rule("pos", {"p": 1.0})
    rule.tables = tables
    rng = random.Random(2)
    draws = [rule.replace("film", "NN", rng) for _ in range(20000)]
    assert all(("NN", w) in counts for w in draws)
    nn_total = sum(c for (tag, _), c in counts.items() if tag == "NN")
    top_word, top_count = max(((w, c) for (tag, w), c in counts.items() if tag == "NN"), key=lambda x: x[1])
    expected = top_count / nn_total
    assert abs(draws.count(top_word) / len(draws) - expected) < 0.01
    # Every replacement of every word of a real tagged sentence carries that word's tag.
    sentence = words[5]
    out_tokens = []
    for _ in range(200):
        tokens = list(sentence.tokens)
        for i, word in enumerate(sentence.tokens):
            tokens[i] = rule.replace(word, sentence.tags[i], rng)
            assert (sentence.tags[i], tokens[i]) in counts
        out_tokens.append(tokens)
    assert any(t != sentence.tokens for t in out_tokens)


def test_ngram_rate_and_lengths():
    rule = build_rule("ngram", {"p": 0.25})
    rules = TangRules(ngram=rule)
    rng = random.Random(3)
    cut = 0
    original = SENTENCE.text()
    for _ in range(4000):
        text, applied = rules.sample_side(SENTENCE, rng)
        if "ngram" in applied:
            cut += 1
            n = len(text.split())
            assert 1 <= n <= 5
            assert text in original
    assert abs(cut / 4000 - 0.25) < 0.025


def _samples(sides: list[Words], rules: TangRules, config: TangConfig, rng: random.Random) -> list:
    """Tang samples of one text row: (texts per side, rule name) for each draw."""
    return list(tang_samples(sides, config, partial(rules.sample_sides, sides, config, rng)))


def test_tang_samples_count_and_determinism():
    rules = TangRules(build_rule("mask"), None, build_rule("ngram"))
    config = TangConfig()
    first = _samples([SENTENCE], rules, config, example_rng(0, "tang", "7"))
    again = _samples([SENTENCE], rules, config, example_rng(0, "tang", "7"))
    other = _samples([SENTENCE], rules, config, example_rng(1, "tang", "7"))
    assert len(first) == 20  # n_iter, Tang et al. 2019
    assert first == again
    assert first != other


def test_min_words_leaves_short_examples_without_samples():
    """SST-2's phrases: rows under min_words keep only their original; punctuation is not a word."""
    rules = TangRules(build_rule("mask", {"p": 0.5}), None, build_rule("ngram"))
    config = TangConfig(min_words=14)
    assert len(_samples([SENTENCE], rules, config, example_rng(0, "tang", "7"))) == 20  # 14 words
    punctuated = Words(SENTENCE.tokens[:13] + ["."], [" "] * 12 + ["", ""], SENTENCE.tags)
    assert _samples([punctuated], rules, config, example_rng(0, "tang", "7")) == []  # 13 words + "."
    short_pair = [Words(["a", "film"], [" ", ""], ["DT", "NN"]), punctuated]
    assert len(_samples(short_pair, rules, config, example_rng(0, "tang", "7"))) == 10  # 15 over both sides


def test_pairs_follow_d_bert_one_side_probability():
    rules = TangRules(mask=build_rule("mask", {"p": 0.5}))
    pair = [SENTENCE, Words(["a", "second", "sentence"], [" ", " ", ""], ["DT", "JJ", "NN"])]
    config = TangConfig()
    rng = random.Random(4)
    one_side = both = 0
    samples = 0
    for _ in range(600):
        batch = _samples(pair, rules, config, rng)
        assert len(batch) == 10  # pair default n_iter (d-bert)
        for texts, _ in batch:
            samples += 1
            changed = [texts[i] != pair[i].text() for i in range(2)]
            one_side += changed.count(True) == 1
            both += all(changed)
    # P(one side) = 2/3 (plus "both" draws where one side happened to stay unchanged).
    assert 0.62 < one_side / samples < 0.76
    assert 0.25 < both / samples < 0.36


def test_vectorised_pos_counts_equal_a_plain_count(sample_tables):
    _, counts, words = sample_tables
    half = len(words) // 2
    blocks = []
    for part in (words[:half], words[half:]):
        blocks.append(pa.table({**words_columns("a", part), **words_columns("b", [None] * len(part))}))
    summed = TextRows.pos_counts(blocks)
    expected = sorted((tag, word, n) for (tag, word), n in counts.items())
    assert list(zip(*(summed.column(c).to_pylist() for c in ("tag", "word", "count")))) == expected


def test_min_words_enters_the_fingerprint_only_when_set():
    from augment.config import AugmentConfig

    assert "min_words" not in AugmentConfig().resolved()["tang"]  # outputs made before the option still match
    assert AugmentConfig.from_dict({"tang": {"min_words": 20}}).resolved()["tang"]["min_words"] == 20


def test_skip_subphrases_flags_rows_inside_a_longer_row_and_enters_the_fingerprint_only_when_set(nlp_tagger):
    """SST-2's phrases lie inside its sentences: `tang.skip_subphrases` flags them (whole words only, any
    whitespace), so the augmenter gives them no samples; the longest rows and pairs are never flagged."""
    import pyarrow as pa

    from augment.augmenter import Augmenter
    from augment.config import AugmentConfig
    from augment.subphrases import inside_longer, mark_subphrases

    texts = ["a gripping , funny film", "gripping ,  funny", "funny film", "a grip", "film", "an ending", None]
    assert inside_longer(texts) == [False, True, True, False, True, False, False]  # "a grip": not whole words
    table = mark_subphrases(pa.table({"text_a": texts[:3], "text_b": [None, None, "x"]}))
    assert table.column("subphrase").to_pylist() == [False, True, False]  # a pair is never a sub-phrase
    config = AugmentConfig.from_dict({"rules": {"mask": {"p": 0.5}}, "tang": {"skip_subphrases": True}})
    rows = pa.table({"row": [1, 2], "source_id": ["0", "1"], "text_a": texts[:2], "text_b": [None, None],
                     "label": [1, 1], "subphrase": [False, True]})
    augmenter = Augmenter(config, pa.int64())
    for name, column in augmenter.kind.split(nlp_tagger, rows, None, 8).items():
        rows = rows.append_column(name, column)
    out, _ = augmenter.augment(rows)
    by_source = Counter(out.column("source_id").to_pylist())
    assert by_source["0"] > 1 and by_source["1"] == 1  # the sub-phrase keeps only its original
    assert "skip_subphrases" not in AugmentConfig().resolved()["tang"]
    assert config.resolved()["tang"]["skip_subphrases"] is True
