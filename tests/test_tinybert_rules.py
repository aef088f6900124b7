"""TinyBERT's rules: batched masked-LM candidates, cached GloVe neighbours, combination."""

from __future__ import annotations

import math
import random

import pytest
import torch

from augment.rules import build_rule
from augment.rules.glove import load_glove
from augment.tinybert import TinyBertConfig, TinyBertRules, replaceable, tinybert_samples
from augment.words import Words

SENTENCES = [
    Words("The acting was superb , but the plot dragged .".split(), [True] * 9 + [False], []),
    Words("A weightless and unforgettable film".split(), [True] * 4 + [False], []),
    Words("Great music , lovely photography and a clever script".split(), [True] * 8 + [False], []),
]


@pytest.fixture(scope="module")
def mlm(tiny_mlm_dir):
    rule = build_rule("mlm", {"model": str(tiny_mlm_dir), "batch_size": 4})
    rule.setup()
    return rule


def _queries(rule):
    return [(w, i) for w in SENTENCES for i, tok in enumerate(w.tokens) if replaceable(tok) and rule.is_single_piece(tok)]


def test_mlm_queries_go_through_the_model_in_batches(mlm):
    queries = _queries(mlm)
    assert len(queries) >= 8
    mlm.forward_calls = 0
    found = mlm.candidates(queries)
    assert mlm.forward_calls == math.ceil(len(queries) / mlm.batch_size)
    assert len(found) == len(queries)
    for (words, index), cands in zip(queries, found):
        assert 0 < len(cands) <= 15
        assert all(not c.startswith("##") and not c.startswith("[") for c in cands)
        assert words.tokens[index].lower() not in [c.lower() for c in cands]


def test_mlm_candidates_do_not_depend_on_batch_layout(tiny_mlm_dir, mlm):
    """Length-sorted padded batches give the same top-K as one query at a time."""
    queries = _queries(mlm)
    single = build_rule("mlm", {"model": str(tiny_mlm_dir), "batch_size": 1})
    single.setup()
    batched = mlm.candidates(queries)
    one_by_one = single.candidates(queries)
    assert single.forward_calls == len(queries)
    agree = sum(a[:10] == b[:10] for a, b in zip(batched, one_by_one))
    assert agree == len(queries)


def test_mlm_query_sees_the_original_sentence_as_segment_b(mlm):
    """`candidates` feeds the model `[CLS] masked [SEP] original [SEP]` (segments 0 and 1) and
    runs the LM head on the [MASK] of segment A: recorded from the real forward passes."""
    fed, head_inputs, hidden = [], [], []

    def encoder_inputs(module, args, kwargs):
        fed.append({k: kwargs[k].cpu() for k in ("input_ids", "token_type_ids", "attention_mask")})

    handles = [
        mlm._encoder.register_forward_pre_hook(encoder_inputs, with_kwargs=True),
        mlm._encoder.register_forward_hook(lambda module, args, out: hidden.append(out.last_hidden_state.cpu())),
        mlm._head.register_forward_pre_hook(lambda module, args: head_inputs.append(args[0].cpu())),
    ]
    try:  # "superb" after single pieces; "film" after words of several wordpieces
        found = mlm.candidates([(SENTENCES[0], 3), (SENTENCES[1], 4)])
    finally:
        for handle in handles:
            handle.remove()
    assert all(found) and len(fed) == len(hidden) == len(head_inputs) == 1  # one padded batch of two
    superb = (["[CLS]", "the", "acting", "was", "[MASK]", ",", "but", "the", "plot", "dragged", ".", "[SEP]"],
              ["the", "acting", "was", "superb", ",", "but", "the", "plot", "dragged", ".", "[SEP]"])
    film = (["[CLS]", "a", "weight", "##less", "and", "un", "##for", "##get", "##table", "[MASK]", "[SEP]"],
            ["a", "weight", "##less", "and", "un", "##for", "##get", "##table", "film", "[SEP]"])
    rows = []
    for row in range(2):
        n = int(fed[0]["attention_mask"][row].sum())
        tokens = mlm.tokenizer.convert_ids_to_tokens(fed[0]["input_ids"][row, :n].tolist())
        assert fed[0]["input_ids"][row, n:].eq(mlm.tokenizer.pad_token_id).all()
        rows.append((tokens, fed[0]["token_type_ids"][row, :n].tolist()))
        where = tokens.index("[MASK]")  # the head sees exactly the encoder's state there
        assert torch.equal(head_inputs[0][row], hidden[0][row, where])
    expected = [(a + b, [0] * len(a) + [1] * len(b)) for a, b in (superb, film)]
    assert sorted(rows) == sorted(expected)


def test_glove_neighbours_exclude_self_keep_title_case_and_are_cached(tiny_glove):
    rule = build_rule("glove", {"path": str(tiny_glove), "top_k": 2})
    rule.setup()
    found = rule.neighbours(["weightless", "Unforgettable", "weightless", "nosuchword"])
    assert found["weightless"] == ["lightweight", "featherlight"]
    assert found["Unforgettable"] == ["Memorable", "Haunting"]
    assert found["nosuchword"] == []
    assert set(rule.cache) == {"weightless", "Unforgettable", "nosuchword"}
    rule._matrix = None  # a second lookup must come from the cache, not a new matrix multiply
    assert rule.neighbours(["weightless"])["weightless"] == ["lightweight", "featherlight"]


def test_glove_is_converted_once_then_memory_mapped(tiny_glove, tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.setenv("DISTILL_DATA_CACHE", str(tmp_path / "cache"))
    first = build_rule("glove", {"path": str(tiny_glove), "top_k": 2})
    first.setup()
    converted = list((tmp_path / "cache" / "glove").glob("*/vectors.npy"))
    assert len(converted) == 1
    mtime = converted[0].stat().st_mtime_ns
    second = build_rule("glove", {"path": str(tiny_glove), "top_k": 2})
    second.setup()
    assert isinstance(second._matrix, np.memmap) and converted[0].stat().st_mtime_ns == mtime
    assert second.neighbours(["weightless"]) == first.neighbours(["weightless"])
    assert second._words == first._words


def test_load_glove_normalises_and_skips_word2vec_header(tmp_path):
    path = tmp_path / "w2v.txt"
    path.write_text("2 3\nfoo 3 0 4\nbar baz 0 2 0\n", encoding="utf-8")
    words, matrix = load_glove(path)
    assert words == ["foo", "bar baz"]
    assert matrix[0].tolist() == pytest.approx([0.6, 0.0, 0.8])


def test_tinybert_combination_rate_and_stop_words(tiny_mlm_dir, tiny_glove, mlm):
    glove = build_rule("glove", {"path": str(tiny_glove)})
    glove.setup()
    rules = TinyBertRules(mlm=mlm, glove=glove)
    candidates = rules.candidates([[SENTENCES[1]]])[0]
    sources = {src for word in candidates[0] for _, src in word}
    assert sources == {"mlm", "glove"}  # "weightless" splits into wordpieces -> GloVe
    stop_index = SENTENCES[1].tokens.index("and")
    assert candidates[0][stop_index] == []
    rng = random.Random(5)
    replaced = eligible = 0
    for texts, rule in tinybert_samples([SENTENCES[1]], candidates, TinyBertConfig(n_aug=2000), rng):
        tokens = texts[0].split()
        assert tokens[stop_index] == "and"
        for i, options in enumerate(candidates[0]):
            if options:
                eligible += 1
                replaced += tokens[i] != SENTENCES[1].tokens[i]
    assert abs(replaced / eligible - 0.4) < 0.02  # p_t = 0.4
