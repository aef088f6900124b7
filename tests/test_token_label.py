"""Token tasks, label side: alignment of words and pieces, the per-word cache columns against a direct
teacher forward, unknown-tag refusal, truncation, the reader's padding (real local Ray, tiny teacher)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
import torch

from distill.cache import load
from distill.common.labels import LabelError
from distill.label import LabelConfig, run
from distill.storage.shards import read_shards
from distill.words import align_words
from tests.token_data import ID2LABEL, augmented_rows, tagged_sentences, write_augmented

LABEL2ID = {v: k for k, v in ID2LABEL.items()}


def test_align_words_marks_first_pieces_and_counts_truncated_words(tiny_token_teacher_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_token_teacher_dir)
    words = ["zorbathrax", "visited", "kathmandu", "."]
    aligned = align_words(tokenizer, [words], max_length=64)
    pieces = tokenizer.convert_ids_to_tokens(aligned.input_ids[0])
    assert aligned.kept == [[0, 1, 2, 3]] and aligned.word_starts[0][0] == 1  # after [CLS]
    assert [pieces[i] for i in aligned.word_starts[0]] == [tokenizer.tokenize(w)[0] for w in words]
    assert len(tokenizer.tokenize("zorbathrax")) > 1  # a multi-piece word: only its first piece is a start
    short = align_words(tokenizer, [words], max_length=4)  # [CLS] + 2 pieces + [SEP]
    assert short.kept == [[0]] and short.truncated == 3 and short.without_pieces == 0


@pytest.fixture(scope="module")
def token_augmented(tmp_path_factory):
    rows = augmented_rows(tagged_sentences(24), copies=1)
    rows[0]["tags"] = None  # an unlabelled source: its words store -100
    return write_augmented(tmp_path_factory.mktemp("tok-aug"), rows)


@pytest.fixture(scope="module")
def token_cache(ray_local, token_augmented, tiny_token_teacher_dir, tmp_path_factory):
    config = LabelConfig(teacher=str(tiny_token_teacher_dir), features=["hidden"], hidden_layers=[2], dtype="float32",
                         batch_size=8)
    return run(token_augmented, tmp_path_factory.mktemp("tok-label"), config)


@pytest.mark.slow
def test_per_word_logits_equal_the_teachers_own_output_at_first_pieces(token_cache, token_augmented,
                                                                      tiny_token_teacher_dir):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    cache = load(token_cache.cache_dir)
    manifest = cache.manifest
    assert manifest["format_version"] == 4 and manifest["features"]["head"] == "token_classification"
    assert manifest["input"]["task"] == "token_classification"
    assert manifest["features"]["layout"]["logits"]["layout"] == "per_word"
    assert cache.table.schema.field("word_starts").type == pa.list_(pa.int32())
    assert cache.table.schema.field("labels").type == pa.list_(pa.int32())
    assert cache.table.schema.field("logits").type == pa.list_(pa.list_(pa.float32(), 5))
    assert manifest["totals"]["words_truncated"] == 0
    source = read_shards(token_augmented)
    by_uid = {u: i for i, u in enumerate(source.column("uid").to_pylist())}
    tokenizer = AutoTokenizer.from_pretrained(tiny_token_teacher_dir)
    model = AutoModelForTokenClassification.from_pretrained(tiny_token_teacher_dir).eval()
    unlabelled = cache.table.column("uid").to_pylist().index("0-0")
    picks = sorted({unlabelled, *range(0, len(cache), 5)})
    batch = cache.batch(picks)
    assert batch["logits"].shape[:2] == batch["word_starts"].shape == batch["labels"].shape
    for row, index in enumerate(picks):
        original = by_uid[cache.table.column("uid")[index].as_py()]
        words = source.column("tokens")[original].as_py()
        tags = source.column("tags")[original].as_py()
        encoded = tokenizer(words, is_split_into_words=True, return_tensors="pt")
        with torch.inference_mode():
            logits = model(**encoded).logits[0]
        firsts = [encoded.word_ids().index(w) for w in range(len(words))]
        n = len(words)
        assert batch["word_starts"][row, :n].tolist() == firsts
        assert batch["labels"][row, :n].tolist() == ([LABEL2ID[t] for t in tags] if tags else [-100] * n)
        torch.testing.assert_close(batch["logits"][row, :n], logits[firsts], rtol=1e-4, atol=1e-4)
        assert (batch["word_starts"][row, n:] == -1).all() and (batch["labels"][row, n:] == -100).all()
        assert (batch["logits"][row, n:] == 0).all() and batch["word_mask"][row].sum() == n
        assert batch["input_ids"][row, : encoded["input_ids"].shape[1]].tolist() == encoded["input_ids"][0].tolist()
    assert batch["hidden_2"].shape[1] == batch["input_ids"].shape[1]  # token-level features still work
    assert "token task" in (token_cache.cache_dir / "README.md").read_text()


@pytest.mark.slow
def test_words_cut_by_max_length_are_dropped_with_their_tags_and_counted(ray_local, token_augmented,
                                                                         tiny_token_teacher_dir, tmp_path):
    result = run(token_augmented, tmp_path, LabelConfig(teacher=str(tiny_token_teacher_dir), max_length=8))
    cache = load(result.cache_dir)
    totals = cache.manifest["totals"]
    words = sum(len(t) for t in read_shards(token_augmented).column("tokens").to_pylist())
    kept = int((cache.batch(list(range(len(cache))))["word_starts"] >= 0).sum())
    assert totals["words"] == words and totals["words_truncated"] == words - kept > 0
    assert int(cache.batch(list(range(len(cache))))["word_starts"].max()) <= 6  # every kept start fits in 8 pieces


@pytest.mark.slow
def test_an_unknown_tag_is_refused_in_one_line_naming_file_row_and_tag(ray_local, tiny_token_teacher_dir, tmp_path):
    rows = augmented_rows(tagged_sentences(6), copies=0)
    rows[4]["tags"] = ["B-ORG" if t == "O" else t for t in rows[4]["tags"]]
    augmented = write_augmented(tmp_path / "aug", rows, shards=2)
    with pytest.raises(LabelError) as error:
        run(augmented, tmp_path / "out", LabelConfig(teacher=str(tiny_token_teacher_dir)))
    message = str(error.value)
    assert "\n" not in message and "part-00001.parquet: row 2: tag 'B-ORG'" in message
    assert not (tmp_path / "out" / "teacher" / "LATEST").exists()


def test_a_sequence_teacher_on_tagged_words_is_refused(tiny_teacher_dir, tmp_path):
    from distill.errors import InputError

    augmented = write_augmented(tmp_path / "aug", augmented_rows(tagged_sentences(4), copies=0), shards=1)
    with pytest.raises(InputError, match="task is token_classification, but the teacher's head is classification"):
        run(augmented, tmp_path / "out", LabelConfig(teacher=str(tiny_teacher_dir), head="classification"))


def test_the_head_is_detected_from_the_teacher_and_topk_is_refused(tiny_token_teacher_dir):
    from distill.common.config_io import ConfigError
    from distill.label import prepare_teacher

    prepared = prepare_teacher(LabelConfig(teacher=str(tiny_token_teacher_dir)))
    assert prepared.features.head == "token_classification" and prepared.features.dims.num_labels == 5
    with pytest.raises(ConfigError, match="full logits per word"):
        prepare_teacher(LabelConfig(teacher=str(tiny_token_teacher_dir), features=["topk"]))


@pytest.mark.slow
def test_datasets_collate_matches_the_arrow_batch(token_cache):
    cache = load(token_cache.cache_dir)
    rows = [0, 3, 7]
    via_datasets, via_arrow = cache.collate([cache.dataset[i] for i in rows]), cache.batch(rows)
    for key in ("word_starts", "labels", "logits", "word_mask", "input_ids"):
        torch.testing.assert_close(via_datasets[key], via_arrow[key], rtol=0, atol=0, msg=key)
    assert json.loads((token_cache.cache_dir / "_manifest.json").read_text())["input"]["tag_names"] == sorted(LABEL2ID)
    assert np.array_equal(via_arrow["word_mask"].numpy(), (via_arrow["word_starts"] >= 0).numpy())
