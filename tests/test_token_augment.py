"""Token-task augmentation (NER shape): tags stay aligned, O-only Tang rules, mention replacement,
refused rules, determinism, and the stage end to end on real spaCy and a real local Ray."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from augment import AugmentConfig, run
from augment.augmenter import Augmenter, TokenRows
from augment.config import ConfigError
from augment.rules.mention import MentionPool, mention_spans
from augment.rules.pos import UnigramTables
from augment.workers import Splitter
from distill.common.columns import Columns
from distill.common.inputs.text import read_text_table
from distill.storage.shards import read_shards
from tests.conftest import SAMPLES

NER = SAMPLES / "ner.jsonl"
COLUMNS = {"tokens": "tokens", "tags": "tags", "id": "id"}


def _config(**kwargs) -> AugmentConfig:
    return AugmentConfig.from_dict({"columns": COLUMNS, "tang": {"n_iter": 6}, **kwargs})


@pytest.fixture(scope="module")
def sample():
    """The bundled sample read, POS-tagged with spaCy, and its global statistics."""
    text = read_text_table(NER, Columns(**COLUMNS))
    tagged = Splitter(_config())(text.table)
    return tagged, UnigramTables(TokenRows.pos_counts([tagged])), MentionPool.from_table(text.table)


def _augment(sample, config: AugmentConfig, table: pa.Table | None = None) -> list[dict]:
    tagged, tables, pool = sample
    augmenter = Augmenter(config, pa.string(), tables, pool)
    return augmenter.augment(tagged if table is None else table)[0].to_pylist()


def _originals(sample) -> dict[str, dict]:
    return {r["source_id"]: r for r in sample[0].to_pylist()}


def test_spans_read_bio_iob1_and_iobes():
    assert mention_spans(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]) == [(0, 2, "PER"), (3, 4, "LOC"), (4, 6, "LOC")]
    assert mention_spans(["I-ORG", "I-ORG", "O", "I-PER", "I-LOC"]) == [(0, 2, "ORG"), (3, 4, "PER"), (4, 5, "LOC")]
    assert mention_spans(["S-PER", "B-ORG", "E-ORG", "O"]) == [(0, 1, "PER"), (1, 3, "ORG")]


def test_pos_tags_come_from_the_given_words(sample):
    tagged = sample[0]
    for words, pos in zip(tagged.column("tokens").to_pylist(), tagged.column("pos").to_pylist()):
        assert len(words) == len(pos)
    counts = TokenRows.pos_counts([tagged]).to_pylist()
    entity_words = {w for r in tagged.to_pylist() for w, t in zip(r["tokens"], r["tags"]) if t != "O"}
    outside_words = {w for r in tagged.to_pylist() for w, t in zip(r["tokens"], r["tags"]) if t == "O"}
    assert {c["word"] for c in counts} == outside_words  # entity words never become pos candidates
    assert "Berlin" in entity_words and "Berlin" not in outside_words


def test_mask_and_pos_touch_only_outside_words(sample):
    rows = _augment(sample, _config(rules={"mask": {"p": 0.3}, "pos": {"p": 0.3}}))
    originals = _originals(sample)
    changed = 0
    for row in rows:
        source = originals[row["source_id"]]
        assert len(row["tokens"]) == len(row["tags"]) == len(source["tokens"])
        assert row["tags"] == source["tags"]
        for word, old, tag in zip(row["tokens"], source["tokens"], source["tags"]):
            if tag != "O":
                assert word == old, (row, source)
            elif word != old:
                changed += 1
                assert word == "[MASK]" or "pos" in row["rule"]
    assert changed > 200
    assert {r["rule"] for r in rows} <= {"original", "mask", "pos", "mask+pos"}


def test_mention_replacement_swaps_whole_spans_of_the_same_type(sample):
    rows = _augment(sample, _config(rules={"mention": {"p": 0.7}}))
    originals = _originals(sample)
    pool = {(kind, words) for kind, mentions in sample[2].items.items() for words in mentions}
    swapped = 0
    for row in [r for r in rows if r["aug_index"] > 0]:
        source = originals[row["source_id"]]
        assert row["rule"] == "mention" and len(row["tokens"]) == len(row["tags"])
        old_spans, new_spans = mention_spans(source["tags"]), mention_spans(row["tags"])
        assert [k for *_, k in old_spans] == [k for *_, k in new_spans]  # same types, same order
        for tag in row["tags"]:  # valid BIO: every I-X continues an X mention
            assert tag == "O" or tag[:2] in ("B-", "I-")
        for i, tag in enumerate(row["tags"]):
            if tag.startswith("I-"):
                assert row["tags"][i - 1][2:] == tag[2:]
        for (s, e, kind), (s2, e2, _) in zip(old_spans, new_spans):
            if row["tokens"][s2:e2] != source["tokens"][s:e]:
                swapped += 1
                assert (kind, tuple(row["tokens"][s2:e2])) in pool
                assert row["tags"][s2:e2] == ["B-" + kind] + ["I-" + kind] * (e2 - s2 - 1)
        # the words outside mentions are the source's, in order
        outside = [w for w, t in zip(row["tokens"], row["tags"]) if t == "O"]
        assert outside == [w for w, t in zip(source["tokens"], source["tags"]) if t == "O"]
    assert swapped > 100


def test_mention_pool_never_draws_the_mention_itself():
    import random

    pool = MentionPool.from_rows([(["Ann", "met", "Bob"], ["B-PER", "O", "B-PER"]), (["Rome"], ["B-LOC"])])
    rng = random.Random(0)
    assert {pool.sample("PER", ("Ann",), rng) for _ in range(50)} == {("Bob",)}
    assert pool.sample("LOC", ("Rome",), rng) is None  # no other LOC: the span stays
    assert pool.sample("ORG", ("X",), rng) is None


def test_rows_do_not_depend_on_how_the_input_is_split(sample):
    config = _config(rules=["mask", "pos", "mention"])
    whole = _augment(sample, config)
    tagged = sample[0]
    parts = [tagged.slice(0, 37), tagged.slice(37, 50), tagged.slice(87)]
    split = [row for part in parts for row in _augment(sample, config, part)]
    assert split == whole
    assert {r["rule"] for r in whole} >= {"mask", "pos", "mention"}
    other_seed = _augment(sample, _config(rules=["mask", "pos", "mention"], seed=1))
    assert other_seed != whole


@pytest.mark.parametrize("rules, message", [
    (["mask", "ngram"], "rules.ngram: the ngram rule cuts sentences mid-mention and is refused for token tasks"),
    (["mlm"], "rules.mlm: the mlm rule does not keep tags aligned and is refused for token tasks"),
    (["glove"], "rules.glove: the glove rule does not keep tags aligned"),
])
def test_rules_that_break_alignment_are_refused(rules, message):
    with pytest.raises(ConfigError) as err:
        _config(rules=rules)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_mention_rule_needs_a_token_task():
    with pytest.raises(ConfigError, match="rules.mention: the mention rule replaces entity spans and needs a token task"):
        AugmentConfig.from_dict({"rules": ["mask", "mention"]})
    assert list(_config().rules) == ["mask", "pos", "mention"]  # token-task defaults
    assert list(AugmentConfig().rules) == ["mask", "pos", "ngram"]  # text-task defaults unchanged
    assert "tokens" not in AugmentConfig().resolved()["columns"]  # text fingerprints unchanged


def _rows(directory) -> list[tuple]:
    table = read_shards(directory)
    return sorted(zip(*(table.column(c).to_pylist() for c in ("uid", "rule", "tokens", "tags"))))


@pytest.fixture(scope="module")
def stage_run(ray_local, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok-ref")
    run(NER, out, _config(workers=1, rows_per_shard=100))
    return out


@pytest.mark.slow
def test_stage_output_schema_and_manifest(stage_run):
    manifest = json.loads((stage_run / "_manifest.json").read_text())
    assert manifest["complete"] and manifest["task"] == "token_classification"
    assert manifest["tag_names"] == ["B-LOC", "B-MISC", "B-ORG", "B-PER", "I-LOC", "I-MISC", "I-ORG", "I-PER", "O"]
    assert manifest["columns"]["tokens"] == "tokens" and manifest["columns"]["tags"] == "tags"
    assert manifest["totals"]["source_rows"] == 150 and manifest["totals"]["rejected_rows"] == 0
    assert set(manifest["totals"]["by_rule"]) >= {"original", "mask", "pos", "mention"}
    table = read_shards(stage_run)
    assert table.schema.names == ["uid", "source_id", "aug_index", "rule", "tokens", "tags"]
    assert table.schema.field("rule").type == pa.string()
    assert table.schema.field("tokens").type == pa.list_(pa.string())
    assert table.schema.field("tags").type == pa.list_(pa.string())
    assert table.num_rows == manifest["totals"]["rows"] > 150 * 3
    for tokens, tags in zip(table.column("tokens").to_pylist(), table.column("tags").to_pylist()):
        assert len(tokens) == len(tags) > 0
    uids = table.column("uid").to_pylist()
    assert len(set(uids)) == len(uids) and "ner-0-0" in uids


@pytest.mark.slow
def test_stage_rows_same_with_two_workers_and_other_shard_size(stage_run, tmp_path):
    run(NER, tmp_path / "other", _config(workers=2, rows_per_shard=37))
    assert _rows(tmp_path / "other") == _rows(stage_run)


@pytest.mark.slow
def test_stage_on_conll_with_default_rules(ray_local, tmp_path):
    result = run(SAMPLES / "ner.conll", tmp_path / "out", AugmentConfig.from_dict({"tang": {"n_iter": 4}}))
    manifest = result.manifest
    assert manifest["task"] == "token_classification" and manifest["input"]["format"] == "conll"
    assert set(manifest["config"]["rules"]) == {"mask", "pos", "mention"}
    table = read_shards(tmp_path / "out")
    assert table.filter(pa.compute.equal(table.column("aug_index"), 0)).num_rows == 5
    assert all(len(a) == len(b) for a, b in zip(table.column("tokens").to_pylist(), table.column("tags").to_pylist()))
