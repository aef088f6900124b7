"""TinyBERT's rules: batched masked-LM candidates, cached GloVe neighbours, combination."""

from __future__ import annotations

import math
import random

import pytest
import torch

from augment.rules import build_rule
from augment.rules.mlm import mask_groups, match_case
from augment.rules.glove import load_glove
from augment.tinybert import TinyBertConfig, TinyBertRules, replaceable, tinybert_samples
from augment.words import Words

SENTENCES = [
    Words("The acting was superb , but the plot dragged .".split(), [" "] * 9 + [""], []),
    Words("A weightless and unforgettable film".split(), [" "] * 4 + [""], []),
    Words("Great music , lovely photography and a clever script".split(), [" "] * 8 + [""], []),
]


@pytest.fixture(scope="module")
def mlm(tiny_mlm_dir):
    rule = build_rule("mlm", {"model": str(tiny_mlm_dir), "batch_size": 4})
    rule.setup()
    return rule


def _rule(tiny_mlm_dir, **options):
    rule = build_rule("mlm", {"model": str(tiny_mlm_dir), "dtype": "float32", **options})
    rule.setup()
    return rule


def _queries(rule, sentences=SENTENCES):
    return [(w, i) for w in sentences for i, tok in enumerate(w.tokens) if replaceable(tok) and rule.is_single_piece(tok)]


def _overlap(a: list[list[str]], b: list[list[str]]) -> float:
    return sum(len(set(x) & set(y)) / max(len(x), len(y), 1) for x, y in zip(a, b)) / len(a)


@pytest.mark.parametrize("n, k", [(1, 1), (5, 1), (5, 2), (7, 3), (4, 4), (6, "all"), (9, 10)])
def test_mask_groups_cover_every_word_once_strided(n, k):
    groups = mask_groups(n, k)
    per_query = n if k == "all" else k
    assert len(groups) == math.ceil(n / per_query)
    assert sorted(i for g in groups for i in g) == list(range(n))
    assert all(len(g) <= per_query for g in groups)
    for g in groups:  # words masked together are ceil(n/k) apart: never neighbours unless k forces it
        assert all(b - a == len(groups) for a, b in zip(g, g[1:]))


@pytest.mark.parametrize("masks_per_query", [1, 2, 3, "all"])
def test_forward_calls_and_sequences_per_mode(tiny_mlm_dir, masks_per_query):
    rule = _rule(tiny_mlm_dir, batch_size=2, masks_per_query=masks_per_query)
    queries = _queries(rule)
    per_side = [sum(1 for w, _ in queries if w is side) for side in SENTENCES]
    expected = sum(math.ceil(n / (n if masks_per_query == "all" else masks_per_query)) for n in per_side)
    found = rule.candidates(queries)
    assert rule.sequences == expected
    assert rule.forward_calls == math.ceil(expected / 2)
    assert len(found) == len(queries)
    for (words, index), cands in zip(queries, found):
        assert 0 < len(cands) <= 15
        assert all(c.isalpha() for c in cands)
        assert words.tokens[index].lower() not in [c.lower() for c in cands]


def test_reference_mode_does_not_depend_on_batch_layout(tiny_mlm_dir):
    """masks_per_query 1 in padded batches gives the same top-K as one query per forward pass."""
    batched = _rule(tiny_mlm_dir, batch_size=4, masks_per_query=1)
    single = _rule(tiny_mlm_dir, batch_size=1, masks_per_query=1)
    queries = _queries(batched)
    assert batched.candidates(queries) == single.candidates(queries)
    assert single.forward_calls == len(queries)


def test_a_side_with_one_candidate_word_gets_the_reference_candidates(tiny_mlm_dir):
    """Where only one word of a side is masked, every mode sends the reference's query."""
    lone = Words("The soundtrack is by far the best thing here .".split(), [" "] * 9 + [""], [])
    reference = _rule(tiny_mlm_dir, masks_per_query=1)
    queries = [(lone, 1)] + _queries(reference)  # "soundtrack", then the other sentences' words
    expected = reference.candidates(queries)[0]
    for mode in (2, "all"):
        assert _rule(tiny_mlm_dir, masks_per_query=mode).candidates(queries)[0] == expected


def test_shared_query_answers_each_word_from_its_own_mask(tiny_mlm_dir):
    """`all`: one sequence with every candidate word masked; each word's candidates are the
    model's top-K at that word's [MASK], computed here straight from the model's logits."""
    rule = _rule(tiny_mlm_dir, masks_per_query="all")
    words = SENTENCES[2]
    queries = _queries(rule, [words])
    assert len(queries) >= 3
    found = rule.candidates(queries)
    assert rule.sequences == 1
    tokens = list(words.tokens)
    for _, index in queries:
        tokens[index] = rule.tokenizer.mask_token
    enc = rule.tokenizer(" ".join(tokens[:-1]) + tokens[-1], words.text(), return_tensors="pt")
    with torch.inference_mode():
        logits = rule._model(**enc).logits[0]
    masks = [i for i, t in enumerate(enc["input_ids"][0].tolist()) if t == rule.tokenizer.mask_token_id]
    assert len(masks) == len(queries)
    for (w, index), position, cands in zip(queries, masks, found):
        scores = logits[position].masked_fill(rule._blocked, float("-inf"))
        top = [rule._vocab[i] for i in torch.topk(scores, 16).indices.tolist()]
        assert cands == [match_case(t, w.tokens[index]) for t in top if t != w.tokens[index].lower()][:15]


def test_candidates_are_deterministic_and_truncated_words_get_none(tiny_mlm_dir):
    rule = _rule(tiny_mlm_dir, masks_per_query="all")
    queries = _queries(rule)
    assert rule.candidates(queries) == rule.candidates(queries)
    short = _rule(tiny_mlm_dir, masks_per_query="all", max_length=12)  # cuts the long sentences' tails
    cut = short.candidates(queries)
    assert any(cut) and not all(cut)


def test_int8_quantizes_the_linear_layers_and_stays_close_to_float32(tiny_mlm_dir):
    fp32 = _rule(tiny_mlm_dir, masks_per_query=1)
    int8 = _rule(tiny_mlm_dir, masks_per_query=1, dtype="int8")
    quantized = torch.ao.nn.quantized.dynamic.Linear
    assert any(isinstance(m, quantized) for m in int8._encoder.modules())
    assert not any(type(m) is torch.nn.Linear for m in int8._encoder.modules())
    assert type(int8._head.predictions.decoder) is torch.nn.Linear  # the LM head stays float32
    assert int8.runtime() == {"device": "cpu", "dtype": "int8"}
    queries = _queries(fp32)
    assert _overlap(fp32.candidates(queries), int8.candidates(queries)) > 0.6


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


def test_token_budget_cuts_batches_without_changing_float32_candidates(tiny_mlm_dir):
    """Length-sorted batches under `max_batch_tokens`: each forward pass pads only to its own
    longest query, and stays within the budget unless one query alone exceeds it."""
    wide = _rule(tiny_mlm_dir, masks_per_query=1)
    narrow = _rule(tiny_mlm_dir, masks_per_query=1, max_batch_tokens=48)
    shapes = []
    handle = narrow._encoder.register_forward_pre_hook(
        lambda module, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)
    try:
        queries = _queries(wide)
        assert narrow.candidates(queries) == wide.candidates(queries)
    finally:
        handle.remove()
    assert wide.forward_calls == 1 and narrow.forward_calls == len(shapes) > 2
    assert all(rows * width <= 48 or rows == 1 for rows, width in shapes)
