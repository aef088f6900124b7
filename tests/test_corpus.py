"""The corpus stage: reading, sentence-pair / plain packing, BERT static masking, and the Ray stage
(determinism across workers and shard sizes, skip, mismatch, resume after SIGKILL)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill.common.config_io import ConfigError
from distill.corpus import STAGE, CorpusConfig, mask_sequence, pack_document, read_documents, run, vocab_fingerprint
from distill.corpus.cli import main as cli_main
from distill.corpus.rows import SCHEMA, RowBuilder, masking_rng, pack_counted, prediction_count
from distill.corpus.vocab import TextEncoder, load_tokenizer, non_special_ids
from distill.corpus.workers import CorpusShardWriter
from distill.errors import InputError
from distill.storage.shards import read_shards
from distill.storage.stage_dir import StageDir, StageMismatchError
from tests.conftest import REPO, kill_group_when, pipeline_env, settled_commit_count

CORPUS_TEXT = """\
The river rose after three days of rain. Farmers moved their cattle to higher ground. Nobody
expected the old bridge to hold, but it did.

Maria opened the bakery at five every morning. The smell of fresh bread drifted down the street. By
seven, a line had formed outside the door.

Astronomers observed a faint signal from a distant galaxy. They spent months checking their
instruments. The signal turned out to be real.

The committee met on Tuesday to discuss the budget. Several members objected to the new parking
fees. A vote was postponed until next month.

Our train was delayed by a fallen tree. Passengers waited patiently in the cold. When it finally
arrived, the conductor apologised twice.

Honeybees communicate through a dance. The angle of the dance points toward food. Its length tells
the others how far they must fly.

He learned to play the violin at the age of forty. Practice was slow and often frustrating. Ten
years later he joined a small orchestra.

The museum reopened after a long renovation. Visitors admired the restored ceiling. Some paintings
had not been shown in decades.

A storm knocked out power across the valley. Families lit candles and told stories. The lights came
back just before midnight.

The recipe calls for two cups of flour. Mix it slowly with warm water and salt. Let the dough rest
for an hour before baking.

Volcanoes can create new islands in the ocean. Lava cools quickly when it meets the water. Over
centuries, plants and birds arrive.

The library extended its opening hours during exams. Students filled every table. Coffee was not
allowed, but nobody seemed to notice.

A young fox wandered into the garden. It sniffed the roses and drank from the pond. Then it vanished
under the hedge.

The new software update fixed several bugs. It also changed the layout of the settings menu. Many
users complained at first.

Glaciers carve deep valleys as they move. The process takes thousands of years. When the ice melts,
lakes often remain.

She wrote letters to her grandmother every week. The replies came in careful handwriting. They kept
the family connected across two continents.

The football match ended in a draw. Both teams missed a penalty in the final minutes. Fans left the
stadium arguing about the referee.

Salt was once so valuable that it was used as money. Roman soldiers were sometimes paid with it. The
word salary may come from this.

The hikers reached the summit before noon. Clouds hid the view for a while. Suddenly the sky cleared
and the whole range appeared.

Our neighbour repairs old clocks in his garage. Some of them are more than a century old. Every hour
the whole house seems to chime.

The city planted a thousand trees last spring. Most of them survived the dry summer. Streets feel
cooler in the afternoon now.

Octopuses can change colour in a fraction of a second. They use special cells in their skin. This
helps them hide from predators.

The company announced record profits this quarter. Its shares rose sharply on the news. Analysts
warned that growth might slow next year.

A small boat drifted toward the harbour at dawn. Its sail was torn and its engine silent. The coast
guard towed it safely to shore.

Children in the village learn to swim in the lake. Lessons begin when the water warms up in June. By
August most of them can cross it.

The professor paused in the middle of her lecture. A student had asked a surprising question. She
smiled and rewrote the equation on the board.

Tea was first brought to Europe by traders. It quickly became popular in many countries. Today it is
the most widely drunk beverage after water.

The old lighthouse no longer guides ships. Volunteers turned it into a small museum. On clear nights
they still switch on the lamp.

Snow fell heavily through the night. In the morning the roads were closed. Children built snowmen
while their parents shovelled paths.

The orchestra rehearsed the symphony for weeks. On the opening night the hall was full. The audience
stood and applauded for ten minutes.

Migrating birds use the stars to find their way. Some also sense the magnetic field of the earth.
Young birds still get lost sometimes.

The restaurant changes its menu every season. In autumn it serves pumpkin soup and roasted
chestnuts. Reservations are hard to get.

Engineers tested the new bridge with heavy trucks. Sensors measured how much the steel bent. The
results were better than predicted.

My cousin keeps a diary of the weather. She has written in it every day for twenty years. Her notes
show that winters are getting shorter.

The market square fills with stalls on Saturdays. Farmers sell cheese, honey and vegetables.
Musicians play near the fountain until sunset.

Ancient sailors navigated by watching the coastline. Later they learned to use the compass. Maps
slowly became more accurate over the centuries.
"""
# 36 short English paragraphs of three sentences each (about 27 wordpieces)
PARAGRAPHS = [" ".join(paragraph.split()) for paragraph in CORPUS_TEXT.strip().split("\n\n")]
MAX_LENGTH = 24  # short sequences: most paragraphs give a pair and a single-sentence tail


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    return load_tokenizer(str(minilm_dir))


@pytest.fixture(scope="module")
def specials(tokenizer) -> set[int]:
    return set(tokenizer.all_special_ids)


def _config(minilm_dir, **kwargs) -> CorpusConfig:
    return CorpusConfig(tokenizer=str(minilm_dir), **kwargs)


def _write_txt(path: Path, documents: list[str]) -> Path:
    path.write_text("\n".join(documents) + "\n", encoding="utf-8")
    return path


def _rows(directory: Path) -> list[dict]:
    return read_shards(directory).to_pylist()


# --- config --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, key", [
    ({"mask_probability": 1.5}, "mask_probability"),
    ({"mask_token_ratio": -0.1}, "mask_token_ratio"),
    ({"mask_token_ratio": 0.8, "random_token_ratio": 0.3}, "random_token_ratio"),
    ({"max_length": 4}, "max_length"),
    ({"min_tokens": 0}, "min_tokens"),
    ({"min_tokens": 200}, "min_tokens"),
    ({"packing": "nsp"}, "packing"),
    ({"documents": "page"}, "documents"),
    ({"docs_per_shard": 0}, "docs_per_shard"),
    ({"copies": -1}, "copies"),
])
def test_config_refuses_bad_values_in_one_line_naming_the_field(kwargs, key):
    with pytest.raises(ConfigError) as err:
        CorpusConfig(**kwargs)
    assert str(err.value).startswith(f"{key}: ") and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=f"^{key}: "):
        CorpusConfig.from_dict(kwargs)


def test_config_strict_types_auto_shards_and_resolved():
    with pytest.raises(ConfigError, match="^copies: '2' is not an integer"):
        CorpusConfig.load(None, ["copies='2'"])
    with pytest.raises(ConfigError, match="unknown config key"):
        CorpusConfig.from_dict({"mask_prob": 0.2})
    config = CorpusConfig.load(None, ["docs_per_shard=auto", "workers=3", "tokenizer=some/tok"])
    assert [config.shard_docs(n) for n in (1, 32, 33, 10_000, 10**8)] == [1, 1, 2, 313, 1000]
    assert CorpusConfig(docs_per_shard=7).shard_docs(10**6) == 7
    resolved = config.resolved()
    assert "workers" not in resolved and "tokenizer" not in resolved
    assert resolved["docs_per_shard"] == "auto" and resolved["copies"] == 2 and resolved["seed"] == 0
    assert resolved == CorpusConfig(workers=1).resolved()


# --- reading -------------------------------------------------------------------------------------
def test_reads_txt_by_line_and_by_blank_line(tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("First document.\n   \nSecond one.\r\nThird.", encoding="utf-8")
    assert read_documents(lines, CorpusConfig()) == ["First document.", "Second one.", "Third."]
    paragraphs = tmp_path / "paras.txt"
    paragraphs.write_text("\n\nA first line.\nStill the first.\n\n \n\nThe second.\n\n", encoding="utf-8")
    assert read_documents(paragraphs, CorpusConfig(documents="blank_line")) == [
        "A first line.\nStill the first.", "The second."]
    wrapped = tmp_path / "wrapped.txt"
    wrapped.write_text(CORPUS_TEXT, encoding="utf-8")
    documents = read_documents(wrapped, CorpusConfig(documents="blank_line"))
    assert [" ".join(d.split()) for d in documents] == PARAGRAPHS and "\n" in documents[0]
    assert len(read_documents(wrapped, CorpusConfig())) == len(CORPUS_TEXT.strip().splitlines()) - 35


def test_reads_jsonl_parquet_and_datasets_folders(tmp_path):
    import datasets

    docs = PARAGRAPHS[:5]
    jsonl = tmp_path / "corpus.jsonl"
    jsonl.write_text("".join(json.dumps({"id": i, "body": d}) + "\n" for i, d in enumerate(docs)) + "\n", "utf-8")
    assert read_documents(jsonl, CorpusConfig(text_column="body")) == docs
    parquet = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"text": docs + ["  "]}), parquet)
    assert read_documents(parquet, CorpusConfig()) == docs
    datasets.Dataset.from_dict({"text": docs}).save_to_disk(tmp_path / "ds")
    assert read_documents(tmp_path / "ds", CorpusConfig()) == docs
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["x"]}),
                          "wiki": datasets.Dataset.from_dict({"text": docs})}).save_to_disk(tmp_path / "dd")
    assert read_documents(tmp_path / "dd", CorpusConfig(split="wiki")) == docs
    with pytest.raises(InputError, match=r"no split 'test' \(splits: train, wiki\)"):
        read_documents(tmp_path / "dd", CorpusConfig(split="test"))


def _one_line_error(source, config=CorpusConfig()) -> str:
    with pytest.raises(InputError) as err:
        read_documents(source, config)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_bad_input_is_one_line_naming_file_row_and_field(tmp_path):
    jsonl = tmp_path / "corpus.jsonl"
    jsonl.write_text('{"text": "fine"}\n{"text": "also fine"}\n{"text": 7}\n', encoding="utf-8")
    assert _one_line_error(jsonl) == "corpus.jsonl: row 3: field 'text' is int, not a string"
    jsonl.write_text('{"text": "fine"}\n{"text": null}\n', encoding="utf-8")
    assert _one_line_error(jsonl) == "corpus.jsonl: row 2: field 'text' is null, not a string"
    jsonl.write_text('{"text": "fine"}\n{"text": "broken\n', encoding="utf-8")
    assert _one_line_error(jsonl).startswith("corpus.jsonl: row 2: invalid JSON")
    jsonl.write_text('{"body": "no text field"}\n', encoding="utf-8")
    assert _one_line_error(jsonl).startswith("corpus.jsonl: row 1: no field 'text'")
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "corpus.parquet")
    assert "corpus.parquet: no column 'text' (columns: body)" in _one_line_error(tmp_path / "corpus.parquet")
    pq.write_table(pa.table({"text": ["a", None]}), tmp_path / "nulls.parquet")
    assert _one_line_error(tmp_path / "nulls.parquet") == "nulls.parquet: row 2: field 'text' is null, not a string"
    (tmp_path / "latin1.txt").write_bytes("fine\ncaf\xe9\n".encode("latin-1"))
    assert _one_line_error(tmp_path / "latin1.txt").startswith("latin1.txt: line 2: invalid UTF-8")
    assert _one_line_error(tmp_path / "missing.txt").endswith("missing.txt: input file not found")


def test_hub_name_offline_says_it_needs_the_network_or_a_local_copy():
    message = _one_line_error("someone/no-such-corpus")
    assert message.startswith("someone/no-such-corpus: ")
    assert message.endswith("needs the network or a local copy (a save_to_disk folder or a data file)")


# --- packing -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def token_docs(tokenizer) -> list[list[list[int]]]:
    return TextEncoder(tokenizer, CorpusConfig()).token_sentences(PARAGRAPHS)


def test_sentencizer_and_tokenizer_split_sentences_without_specials(tokenizer, specials):
    sentences = TextEncoder(tokenizer, CorpusConfig()).token_sentences(
        ["The cat sat. It said [SEP] and [MASK] aloud! Then it slept", "   "])
    assert len(sentences[0]) == 3 and sentences[1] == []
    assert not specials & {piece for s in sentences[0] for piece in s}, "literal [SEP]/[MASK] become plain pieces"
    plain = TextEncoder(tokenizer, CorpusConfig(packing="plain")).token_sentences(["The cat sat. It slept."])
    slept = tokenizer("It slept.", add_special_tokens=False)["input_ids"]
    assert plain == [[sentences[0][0] + slept]], "plain: the document tokenised whole"


@pytest.mark.parametrize("max_length", [12, MAX_LENGTH, 64])
def test_pair_packing_is_cls_a_sep_b_sep_at_sentence_boundaries(token_docs, tokenizer, max_length):
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    config = CorpusConfig(max_length=max_length, min_tokens=1)
    pairs = singles = 0
    for index, sentences in enumerate(token_docs):
        sequences = pack_document(sentences, config, np.random.default_rng([0, index]), cls_id, sep_id)
        pieces = []
        for ids, types in sequences:
            assert len(ids) == len(types) <= max_length
            assert ids[0] == cls_id and ids[-1] == sep_id and cls_id not in ids[1:]
            seps = [i for i, token in enumerate(ids) if token == sep_id]
            assert len(seps) in (1, 2)
            assert types == [0] * (seps[0] + 1) + [1] * (len(ids) - seps[0] - 1), "types from the first [SEP]"
            a, b = ids[1:seps[0]], ids[seps[0] + 1:-1]
            assert a and (len(seps) == 1 or b)
            pairs, singles = pairs + (len(seps) == 2), singles + (len(seps) == 1)
            pieces += a + b
        assert pieces == [p for s in sentences for p in s], "min_tokens=1: the document's pieces, in order"
        if max_length >= 64:  # no sentence is cut: every A ends at a sentence boundary
            boundaries = set(np.cumsum([len(s) for s in sentences]).tolist())
            offset = 0
            for ids, _ in sequences:
                seps = [i for i, token in enumerate(ids) if token == sep_id]
                assert offset + seps[0] - 1 in boundaries
                offset += len(ids) - 1 - len(seps)
    if max_length >= 64:  # every paragraph (3 sentences, under 60 pieces) is one pair
        assert (pairs, singles) == (len(token_docs), 0)
    else:  # mostly cut sentences at 12; at 24 mostly a pair plus a one-sentence tail
        assert pairs > (10 if max_length == MAX_LENGTH else 0) and singles > 0, (pairs, singles)


def test_pair_split_point_depends_only_on_the_document_rng(token_docs, tokenizer):
    config = CorpusConfig(max_length=64, min_tokens=1)
    args = (config, tokenizer.cls_token_id, tokenizer.sep_token_id)
    first = [pack_document(s, config, np.random.default_rng([0, i]), *args[1:]) for i, s in enumerate(token_docs)]
    again = [pack_document(s, config, np.random.default_rng([0, i]), *args[1:]) for i, s in enumerate(token_docs)]
    other = [pack_document(s, config, np.random.default_rng([1, i]), *args[1:]) for i, s in enumerate(token_docs)]
    assert first == again and first != other


def test_plain_windows_cover_the_document_in_order(token_docs, tokenizer):
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    config = CorpusConfig(packing="plain", max_length=16, min_tokens=1)
    for index, sentences in enumerate(token_docs):
        sequences = pack_document(sentences, config, np.random.default_rng([0, index]), cls_id, sep_id)
        pieces = [p for s in sentences for p in s]
        assert [p for ids, _ in sequences for p in ids[1:-1]] == pieces
        assert all(ids[0] == cls_id and ids[-1] == sep_id and types == [0] * len(ids) for ids, types in sequences)
        assert [len(ids) for ids, _ in sequences[:-1]] == [16] * (len(sequences) - 1) and len(sequences[-1][0]) <= 16


def test_short_sequences_are_dropped_and_counted(token_docs, tokenizer):
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    keep_all = CorpusConfig(packing="plain", max_length=16, min_tokens=1)
    strict = CorpusConfig(packing="plain", max_length=16, min_tokens=10)
    for index, sentences in enumerate(token_docs):
        everything = pack_document(sentences, keep_all, np.random.default_rng(0), cls_id, sep_id)
        packed = pack_counted(sentences, strict, np.random.default_rng(0), cls_id, sep_id)
        assert packed.sequences == [s for s in everything if len(s[0]) - 2 >= 10]
        assert packed.dropped == len(everything) - len(packed.sequences)
    rows = RowBuilder(tokenizer, CorpusConfig(max_length=MAX_LENGTH)).build(PARAGRAPHS, 0)
    assert rows.counts["dropped_short"] > 0 and rows.counts["sequences"] * 2 == rows.counts["rows"]
    assert all(sum(1 for p in ids if p not in (cls_id, sep_id)) >= 8 for ids in rows.columns["input_ids"])


# --- masking -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sequences(token_docs, tokenizer) -> list[list[int]]:
    config = CorpusConfig(max_length=64, min_tokens=1)
    out = []
    for index, sentences in enumerate(token_docs):
        out += [ids for ids, _ in pack_document(sentences, config, np.random.default_rng(index),
                                                tokenizer.cls_token_id, tokenizer.sep_token_id)]
    return out


@pytest.fixture(scope="module")
def vocab_ids(tokenizer) -> np.ndarray:
    return non_special_ids(tokenizer)


def _mask(ids, config, rng, tokenizer, specials, vocab_ids):
    special_mask = [int(token in specials) for token in ids]
    return mask_sequence(ids, special_mask, config, rng, vocab_ids, mask_token_id=tokenizer.mask_token_id)


def test_mask_counts_positions_and_labels(sequences, tokenizer, specials, vocab_ids):
    config = CorpusConfig(max_predictions=5)
    assert [prediction_count(n, CorpusConfig()) for n in (0, 1, 3, 10, 20, 100, 1000)] == [0, 1, 1, 2, 3, 15, 20]
    for index, ids in enumerate(sequences):
        masked, positions, labels = _mask(ids, config, np.random.default_rng(index), tokenizer, specials, vocab_ids)
        candidates = sum(token not in specials for token in ids)
        assert len(positions) == min(5, max(1, round(0.15 * candidates)))
        assert positions == sorted(set(positions))
        assert all(ids[p] not in specials for p in positions), "specials are never chosen"
        assert labels == [ids[p] for p in positions]
        assert len(masked) == len(ids)
        assert all(masked[i] == ids[i] for i in range(len(ids)) if i not in positions)


def test_mask_random_keep_fractions_follow_the_ratios(sequences, tokenizer, specials, vocab_ids):
    """60 maskings of 36 sequences x ~ 13 positions (half of ~ 27) ~ 29 000 draws: the binomial
    standard deviation of each fraction is under 0.0024, so a tolerance of 0.015 (over 6 sigma)
    does not flake; the draws are seeded anyway."""
    config = CorpusConfig(mask_probability=0.5, max_predictions=64)
    mask_id = tokenizer.mask_token_id
    fates = {"mask": 0, "random": 0, "kept": 0}
    for repeat in range(60):
        for index, ids in enumerate(sequences):
            masked, positions, _ = _mask(ids, config, masking_rng(0, repeat, index, 0), tokenizer, specials, vocab_ids)
            for p in positions:
                assert masked[p] not in specials - {mask_id}, "a random token is never special"
                fates["mask" if masked[p] == mask_id else "kept" if masked[p] == ids[p] else "random"] += 1
    total = sum(fates.values())
    assert total > 25_000
    assert abs(fates["mask"] / total - 0.8) < 0.015
    assert abs(fates["random"] / total - 0.1) < 0.015
    assert abs(fates["kept"] / total - 0.1) < 0.015


def test_all_random_replacements_are_never_special(sequences, tokenizer, specials, vocab_ids):
    config = CorpusConfig(mask_probability=1.0, max_predictions=64, mask_token_ratio=0.0, random_token_ratio=1.0)
    replaced = []
    for repeat in range(20):
        for index, ids in enumerate(sequences):
            masked, positions, _ = _mask(ids, config, masking_rng(0, repeat, index, 0), tokenizer, specials, vocab_ids)
            assert masked.count(tokenizer.sep_token_id) == ids.count(tokenizer.sep_token_id)
            replaced += [masked[p] for p in positions]
    assert len(replaced) > 15_000 and not specials & set(replaced)
    # ~ 19 000 uniform draws from 30 517 ids hit ~ 14 300 distinct ones
    assert len(set(replaced)) > 12_000, "drawn from the whole (non-special) vocabulary"


def test_same_seed_same_mask_and_another_copy_another_mask(sequences, tokenizer, specials, vocab_ids):
    config = CorpusConfig()
    ids = max(sequences, key=len)
    first = _mask(ids, config, masking_rng(0, 3, 1, 0), tokenizer, specials, vocab_ids)
    assert first == _mask(ids, config, masking_rng(0, 3, 1, 0), tokenizer, specials, vocab_ids)
    assert first[1] != _mask(ids, config, masking_rng(0, 3, 1, 1), tokenizer, specials, vocab_ids)[1]
    assert first[1] != _mask(ids, config, masking_rng(1, 3, 1, 0), tokenizer, specials, vocab_ids)[1]


def test_row_builder_rows_are_independent_of_shard_layout(tokenizer):
    config = CorpusConfig(max_length=MAX_LENGTH)
    builder = RowBuilder(tokenizer, config)
    whole = builder.build(PARAGRAPHS, 0)
    parts = [builder.build(PARAGRAPHS[i:i + 5], i) for i in range(0, len(PARAGRAPHS), 5)]
    assert pa.concat_tables([p.table() for p in parts]).equals(whole.table())
    assert whole.table().schema.equals(SCHEMA)
    unmasked = RowBuilder(tokenizer, CorpusConfig(max_length=MAX_LENGTH, copies=0)).build(PARAGRAPHS, 0)
    assert unmasked.counts["rows"] == unmasked.counts["sequences"] == whole.counts["sequences"]
    assert set(unmasked.columns["aug_index"]) == {0} and not any(unmasked.columns["mlm_positions"])
    restored = []
    for ids, positions, labels in zip(*(whole.columns[c] for c in ("input_ids", "mlm_positions", "mlm_labels"))):
        ids = list(ids)
        for p, label in zip(positions, labels):
            ids[p] = label
        restored.append(ids)
    assert restored[::2] == restored[1::2] == unmasked.columns["input_ids"], "labels put back give the sequence"


def test_vocab_fingerprint_identifies_the_vocabulary(minilm_dir, tokenizer, tmp_path):
    assert vocab_fingerprint(tokenizer) == vocab_fingerprint(load_tokenizer(str(minilm_dir)))
    changed = load_tokenizer(str(minilm_dir))
    changed.add_tokens(["quuxword"])
    assert vocab_fingerprint(changed) != vocab_fingerprint(tokenizer)


# --- the CLI's expected errors ---------------------------------------------------------------------
def test_cli_expected_errors_exit_2_with_one_line(minilm_dir, tmp_path, capsys):
    corpus = _write_txt(tmp_path / "corpus.txt", PARAGRAPHS[:3])
    cases = [
        (["--set", "mask_probability=2"], "error: mask_probability: 2 must be <= 1"),
        (["--set", "copies=two"], "error: copies: 'two' is not an integer"),
        (["--tokenizer", str(tmp_path / "nowhere")], "error: tokenizer: "),
    ]
    for extra, expected in cases:
        args = ["--input", str(corpus), "--output", str(tmp_path / "out"), "--tokenizer", str(minilm_dir), *extra]
        assert cli_main(args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(expected) and "\n" not in err, err
    assert cli_main(["--input", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "out"),
                     "--tokenizer", str(minilm_dir)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope.jsonl'}: input file not found"
    assert not (tmp_path / "out").exists(), "refused before anything is written"


# --- the Ray stage ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory) -> Path:
    return _write_txt(tmp_path_factory.mktemp("corpus") / "corpus.txt", PARAGRAPHS)


@pytest.fixture(scope="module")
def one_worker(ray_local, corpus_file, minilm_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("one-worker")
    return out, run(corpus_file, out, _config(minilm_dir, max_length=MAX_LENGTH, workers=1))


@pytest.mark.slow
def test_stage_output_and_manifest(one_worker, tokenizer, corpus_file):
    out, result = one_worker
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest == result.manifest and manifest["stage"] == STAGE == "corpus" and manifest["complete"]
    assert manifest["kind"] == "corpus" and manifest["is_pair"] is True
    assert manifest["input"]["path"] == str(corpus_file) and len(manifest["input"]["fingerprint"]) == 64
    assert manifest["tokenizer"] == {
        "name": manifest["tokenizer"]["name"], "vocab_fingerprint": vocab_fingerprint(tokenizer), "vocab_size": 30522,
        "mask_token_id": 103, "pad_token_id": 0, "cls_token_id": 101, "sep_token_id": 102}
    assert manifest["config"] == CorpusConfig(max_length=MAX_LENGTH).resolved()
    assert {"ray", "transformers", "pyarrow"} <= set(manifest["versions"])
    assert len(manifest["shards"]) == 18 and manifest["docs_per_shard"] == 2  # ceil(36 / 32) = 2 documents each
    assert [s["file"] for s in manifest["shards"]] == [f"part-{i:05d}.arrow" for i in range(18)]
    table = read_shards(out)
    assert table.schema.equals(SCHEMA)
    totals = manifest["totals"]
    assert totals["documents"] == 36 and totals["rows"] == table.num_rows == 2 * totals["sequences"]
    assert totals["dropped_short"] > 0
    assert totals["tokens"] == sum(map(len, table.column("input_ids").to_pylist()))
    assert totals["masked_positions"] == sum(map(len, table.column("mlm_positions").to_pylist()))
    rows = table.to_pylist()
    assert [r["uid"] for r in rows[:4]] == ["0-0-0", "0-0-1", "0-1-0", "0-1-1"]
    assert all(r["uid"] == f"{r['source_id']}-{r['aug_index']}" for r in rows)
    assert all(len(r["input_ids"]) <= MAX_LENGTH and len(r["mlm_positions"]) >= 1 for r in rows)
    documents = [int(r["source_id"].split("-")[0]) for r in rows]
    assert documents == sorted(documents) and set(documents) <= set(range(36))
    first = pa.ipc.open_stream(pa.memory_map(str(out / "part-00000.arrow"))).read_all()
    assert set(first.column("source_id").to_pylist()) <= {f"{d}-{s}" for d in (0, 1) for s in range(9)}
    import datasets  # the label stage's readers open the shards as they are

    assert datasets.Dataset.from_file(str(out / "part-00000.arrow")).num_rows == first.num_rows


@pytest.mark.slow
def test_same_rows_with_two_workers_and_one_document_per_shard(one_worker, corpus_file, minilm_dir, tmp_path):
    out, reference = one_worker
    two = run(corpus_file, tmp_path / "two", _config(minilm_dir, max_length=MAX_LENGTH, workers=2))
    assert [s["sha256"] for s in two.manifest["shards"]] == [s["sha256"] for s in reference.manifest["shards"]]
    per_document = run(corpus_file, tmp_path / "per-doc", _config(minilm_dir, max_length=MAX_LENGTH, workers=2,
                                                                 docs_per_shard=1))
    assert len(per_document.manifest["shards"]) == 36
    assert _rows(tmp_path / "per-doc") == _rows(tmp_path / "two") == _rows(out)
    assert per_document.manifest["totals"] == reference.manifest["totals"]

    # --overwrite replaces another config's output (here: plain windows, unmasked, 2 documents a shard)
    plain = run(corpus_file, tmp_path / "per-doc", _config(minilm_dir, packing="plain", copies=0, max_length=16,
                                                            min_tokens=1), overwrite=True)
    assert not plain.skipped and plain.manifest["is_pair"] is False and len(plain.manifest["shards"]) == 18
    assert sorted(p.name for p in (tmp_path / "per-doc").glob("part-*")) == [f"part-{i:05d}.arrow" for i in range(18)]
    assert len(list((tmp_path / "per-doc" / "_commits").glob("*.json"))) == 18
    rows = _rows(tmp_path / "per-doc")
    assert {r["aug_index"] for r in rows} == {0} and not any(r["mlm_positions"] or r["mlm_labels"] for r in rows)
    assert all(set(r["token_type_ids"]) == {0} and len(r["input_ids"]) <= 16 for r in rows)
    assert plain.manifest["totals"]["dropped_short"] == 0 and plain.manifest["totals"]["masked_positions"] == 0


@pytest.mark.slow
def test_rerun_is_skipped_and_another_config_is_refused(one_worker, corpus_file, minilm_dir, capsys):
    out, reference = one_worker
    again = run(corpus_file, out, _config(minilm_dir, max_length=MAX_LENGTH, workers=2))  # workers: not hashed
    assert again.skipped and again.shards_written == 0 and "up to date" in again.summary()
    args = ["--input", str(corpus_file), "--output", str(out), "--tokenizer", str(minilm_dir), "-q"]
    assert cli_main(args + ["--set", f"max_length={MAX_LENGTH}"]) == 0
    summary = capsys.readouterr().out.strip()
    assert summary.startswith("corpus: 36 documents -> ") and "up to date" in summary and "\n" not in summary
    assert cli_main(args) == 2  # max_length 128: another config
    assert capsys.readouterr().err.strip().startswith(f"error: {out} holds corpus output of a different input/config")
    with pytest.raises(StageMismatchError, match="different input/config"):
        run(corpus_file, out, _config(minilm_dir, max_length=MAX_LENGTH, seed=1))
    assert json.loads((out / "_manifest.json").read_text()) == reference.manifest, "a refused run changes nothing"


# --- resume after kill -9 --------------------------------------------------------------------------
@pytest.mark.slow
def test_kill_then_resume_redoes_only_missing_shards(ray_local, minilm_dir, tmp_path):
    documents = [f"Part {k}. {p}" for k in range(3) for p in PARAGRAPHS]  # 108 documents, one shard each
    corpus = _write_txt(tmp_path / "big.txt", documents)
    out = tmp_path / "killed"
    overrides = [f"max_length={MAX_LENGTH}", "docs_per_shard=1", "workers=1"]
    args = [sys.executable, "-m", "distill.corpus", "--input", str(corpus), "--output", str(out),
            "--tokenizer", str(minilm_dir), "-q"] + [f"--set={o}" for o in overrides]
    proc = subprocess.Popen(args, cwd=REPO, env=pipeline_env(), start_new_session=True,  # its own embedded Ray
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    kill_group_when(proc, lambda: len(list((out / "_commits").glob("*.json"))) >= 1, timeout=120)
    committed = settled_commit_count(out, quiet_seconds=2.0)
    assert 1 <= committed < len(documents), committed
    assert not (out / "_manifest.json").exists()
    before = {p.name: p.stat().st_mtime_ns for p in (out / "_commits").glob("*.json")}

    config = CorpusConfig.load(None, overrides + [f"tokenizer={json.dumps(str(minilm_dir))}"])
    resumed = run(corpus, out, config)
    assert resumed.shards_written == len(documents) - committed
    after = {p.name: p.stat().st_mtime_ns for p in (out / "_commits").glob("*.json")}
    assert len(after) == len(documents) and all(after[name] == mtime for name, mtime in before.items()), \
        "the killed run's committed shards were kept, not redone"
    assert not list(out.glob("*.tmp-*")) and not (out / "_lock").exists()

    reference = _uninterrupted_serial_run(corpus, tmp_path / "reference", config)
    assert _rows(out) == _rows(tmp_path / "reference")
    assert [s["sha256"] for s in resumed.manifest["shards"]] == [r.sha256 for r in reference]
    assert resumed.manifest["totals"]["rows"] == sum(r.rows for r in reference)


def _uninterrupted_serial_run(corpus: Path, out: Path, config: CorpusConfig) -> list:
    """The stage's shard writer run in this process over every shard, in order, without Ray: an
    uninterrupted reference (Ray against Ray is compared above) that costs no actor start-up."""
    documents = read_documents(corpus, config)
    per_shard = config.shard_docs(len(documents))
    stage = StageDir(out, STAGE, "reference")
    stage.begin()
    writer = CorpusShardWriter(config, stage, [pa.array(documents, pa.large_string())], per_shard)
    for shard in range(math.ceil(len(documents) / per_shard)):
        writer.commit(shard)
    return [stage.valid_record(f"part-{shard:05d}.arrow") for shard in range(math.ceil(len(documents) / per_shard))]
