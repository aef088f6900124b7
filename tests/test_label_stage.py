"""The labeling stage end to end: real local Ray (num_cpus=2), tiny random teachers, real MiniLM."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pyarrow as pa
import pytest
import torch

import augment
from distill.cache import load
from distill.label import LabelConfig, TeacherMismatchError, run
from distill.cache.encoding import flat_values
from distill.storage.shards import read_shards
from tests.conftest import SAMPLES, build_tiny_teacher, run_card_code

pytestmark = pytest.mark.slow
ALL_FEATURES = ["cls", "hidden", "attention", "embedding"]  # topk replaces logits: its own cache below


def _augment(out, source, overrides):
    config = augment.AugmentConfig.load(None, ["rules=[mask, ngram]", "tang.n_iter=3", "rows_per_shard=40", *overrides])
    augment.run(source, out, config)
    return out


@pytest.fixture(scope="module")
def sentences(ray_local, tmp_path_factory):
    """Augmented single sentences: 300 sources in 8 shards, about 1 000 rows."""
    return _augment(tmp_path_factory.mktemp("aug-single"), SAMPLES / "sentiment.csv", ["columns.text_a=sentence"])


@pytest.fixture(scope="module")
def pairs(ray_local, tmp_path_factory):
    return _augment(tmp_path_factory.mktemp("aug-pairs"), SAMPLES / "paraphrase.jsonl",
                    ["columns.text_a=sentence1", "columns.text_b=sentence2"])


@pytest.fixture(scope="module")
def full_cache(sentences, tiny_teacher_dir, tmp_path_factory):
    """Every feature, small length buckets (many batches of different widths)."""
    config = LabelConfig(teacher=str(tiny_teacher_dir), features=ALL_FEATURES, batch_size=16, max_batch_tokens=256,
                         topk=2)
    return run(sentences, tmp_path_factory.mktemp("label"), config)


@pytest.fixture(scope="module")
def float32_cache(sentences, tiny_teacher_dir, tmp_path_factory):
    """[CLS], hidden states and attention scores in float32: what the compact storages are compared with."""
    config = LabelConfig(teacher=str(tiny_teacher_dir), features=["cls", "hidden", "attention"], dtype="float32")
    return load(run(sentences, tmp_path_factory.mktemp("label-float32"), config).cache_dir)


def _direct(model_dir, texts_a, texts_b=None):
    """Reference: the teacher run one example at a time (no padding at all), eager outputs."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, attn_implementation="eager").eval()
    results = []
    with torch.inference_mode():
        for i, text in enumerate(texts_a):
            encoded = tokenizer(text, texts_b[i] if texts_b else None, truncation=True, max_length=128, return_tensors="pt")
            outputs = model(**encoded, output_hidden_states=True, output_attentions=True)
            results.append((encoded, outputs))
    return results


def _rows_by_uid(augmented_dir, uids):
    table = read_shards(augmented_dir)
    index = {u: i for i, u in enumerate(table.column("uid").to_pylist())}
    rows = [index[u] for u in uids]
    texts_b = table.column("text_b").to_pylist()
    return [table.column("text_a")[i].as_py() for i in rows], [texts_b[i] for i in rows]


def test_cached_features_equal_a_direct_forward(full_cache, sentences, tiny_teacher_dir):
    cache = load(full_cache.cache_dir)
    manifest = cache.manifest
    assert manifest["totals"]["rows"] == json.loads((sentences / "_manifest.json").read_text())["totals"]["rows"]
    assert manifest["totals"]["forward_batches"] > 10  # bucketed into many batches of different widths
    assert manifest["totals"]["padded_tokens"] < 1.1 * manifest["totals"]["real_tokens"]
    picks = np.linspace(0, len(cache) - 1, 24).astype(int)
    batch = cache.batch(picks)  # rows of very different lengths padded together again
    uids = cache.table.column("uid").take(pa.array(picks)).to_pylist()
    texts_a, _ = _rows_by_uid(sentences, uids)
    for row, (encoded, out) in enumerate(_direct(tiny_teacher_dir, texts_a)):
        ids = encoded["input_ids"][0]
        n = len(ids)
        assert batch["input_ids"][row, :n].tolist() == ids.tolist()
        assert batch["attention_mask"][row].sum() == n
        tol = dict(rtol=2e-3, atol=2e-3)  # float16 storage
        torch.testing.assert_close(batch["logits"][row], out.logits[0], **tol)
        torch.testing.assert_close(batch["embedding"][row, :n], out.hidden_states[0][0], **tol)
        for layer in (1, 2):
            torch.testing.assert_close(batch[f"hidden_{layer}"][row, :n], out.hidden_states[layer][0], **tol)
            torch.testing.assert_close(batch["cls"][row, layer - 1], out.hidden_states[layer][0, 0], **tol)
            # pre-softmax scores: softmax over them gives transformers' attention probabilities
            scores = batch[f"attention_{layer}"][row, :, :n, :n]
            torch.testing.assert_close(scores.softmax(-1), out.attentions[layer - 1][0], rtol=5e-3, atol=5e-3)
            assert batch[f"attention_{layer}"][row, :, n:, :].abs().sum() == 0  # padding is zero
    assert batch["hidden_1"].shape == (24, batch["input_ids"].shape[1], 32)
    assert batch["attention_1"].shape == (24, 4, batch["input_ids"].shape[1], batch["input_ids"].shape[1])
    assert batch["cls"].shape == (24, 2, 32)


def test_storage_is_unpadded_and_readable_without_this_project(full_cache):
    cache_dir = full_cache.cache_dir
    manifest = json.loads((cache_dir / "_manifest.json").read_text())
    table = read_shards(cache_dir)
    real_tokens = manifest["totals"]["real_tokens"]
    assert len(flat_values(table.column("input_ids").combine_chunks())) == real_tokens
    assert len(flat_values(table.column("hidden_2").combine_chunks())) == real_tokens * 32
    lengths = np.array([len(x) for x in table.column("input_ids").to_pylist()])
    assert len(flat_values(table.column("attention_1").combine_chunks())) == 4 * (lengths ** 2).sum()
    assert table.schema.field("logits").type == pa.list_(pa.float16(), 2)
    per_example = manifest["totals"]["column_bytes_per_example"]
    assert per_example["logits"] == 4.0 and per_example["hidden_2"] == pytest.approx(lengths.mean() * 64, rel=0.01)
    # datasets (memory-mapped) and its collate give the same batch as the pyarrow hot path
    cache = load(cache_dir)
    rows = [cache.dataset[i] for i in (0, 3, 17)]
    via_datasets, via_arrow = cache.collate(rows), cache.batch([0, 3, 17])
    assert via_datasets.keys() == via_arrow.keys()
    for key in via_arrow:
        torch.testing.assert_close(via_datasets[key], via_arrow[key], rtol=0, atol=0)
    # Ray Data, the way the cache's README card says (no IPC reader in Ray Data: pyarrow reads the
    # shard files, from_arrow takes the tables), gives the rows this project's reader gives
    import pyarrow.ipc
    import ray

    files = sorted(cache_dir.glob("part-*.arrow"))
    assert [f.name for f in files] == [s["file"] for s in manifest["shards"]]
    shards = []
    for path, record in zip(files, manifest["shards"]):
        with pa.memory_map(str(path)) as source:
            shards.append(pyarrow.ipc.open_stream(source).read_all())
        assert shards[-1].num_rows == record["rows"]
    rows = ray.data.from_arrow(shards).select_columns(["uid", "aug_index", "logits"]).take_all()
    assert len(rows) == len(cache) == manifest["totals"]["rows"]
    # Ray Data does not keep row order across blocks (preserve_order is off): match rows by their key
    everything = cache.batch(np.arange(len(cache)))
    keys = list(zip(cache.table.column("uid").to_pylist(), everything["aug_index"].tolist()))
    position = {key: i for i, key in enumerate(keys)}
    order = [position[(r["uid"], int(r["aug_index"]))] for r in rows]
    assert sorted(order) == list(range(len(cache)))
    ray_logits = torch.tensor(np.stack([np.asarray(r["logits"], dtype=np.float32) for r in rows]))
    assert ray_logits.shape == (len(cache), 2)
    torch.testing.assert_close(ray_logits, everything["logits"][order], rtol=0, atol=0)  # float16 widens exactly


def test_rerun_reuses_the_cache_and_a_changed_teacher_gets_a_new_one(full_cache, sentences, tiny_teacher_dir, tmp_path):
    cache_dir = full_cache.cache_dir
    before = {p.name: p.stat().st_mtime_ns for p in cache_dir.glob("part-*")}
    config = LabelConfig(teacher=str(tiny_teacher_dir), features=ALL_FEATURES, batch_size=16, max_batch_tokens=256,
                         topk=2, workers=1)  # scheduling options do not change the fingerprint
    again = run(sentences, cache_dir.parent.parent, config)
    assert again.skipped and again.shards_written == 0 and again.cache_dir == cache_dir
    assert {p.name: p.stat().st_mtime_ns for p in cache_dir.glob("part-*")} == before
    # retrain = other weights, same architecture and tokenizer: a new fingerprint directory
    changed = build_tiny_teacher(tmp_path / "teacher-v2", tiny_teacher_dir, seed=1)
    other = run(sentences, cache_dir.parent.parent, LabelConfig(teacher=str(changed), features=["cls"]))
    assert other.cache_dir != cache_dir and other.cache_dir.parent == cache_dir.parent
    assert other.manifest["teacher_fingerprint"] != full_cache.manifest["teacher_fingerprint"]
    assert "hidden_1" not in other.manifest["features"]["columns"]


def test_mismatched_tokenizer_is_refused_before_anything_is_written(sentences, minilm_dir, tmp_path):
    small = build_tiny_teacher(tmp_path / "small-vocab", minilm_dir, vocab_size=1000)
    with pytest.raises(TeacherMismatchError, match="not the teacher's tokenizer"):
        run(sentences, tmp_path / "out", LabelConfig(teacher=str(small)))
    assert not (tmp_path / "out").exists()


def test_pairs_are_labelled_as_pairs(pairs, tiny_teacher_dir, tmp_path):
    result = run(pairs, tmp_path, LabelConfig(teacher=str(tiny_teacher_dir), batch_size=8))
    cache = load(result.cache_dir)
    assert cache.is_pair
    picks = list(range(0, len(cache), max(1, len(cache) // 12)))
    batch = cache.batch(picks)
    texts_a, texts_b = _rows_by_uid(pairs, cache.table.column("uid").take(pa.array(picks)).to_pylist())
    assert all(b is not None for b in texts_b)
    for row, (encoded, out) in enumerate(_direct(tiny_teacher_dir, texts_a, texts_b)):
        ids = encoded["input_ids"][0]
        n = len(ids)
        assert batch["input_ids"][row, :n].tolist() == ids.tolist()
        assert (batch["input_ids"][row] == 102).sum() == 2  # [CLS] a [SEP] b [SEP]
        # segment ids rebuilt by the reader equal the tokenizer's (the teacher saw the latter)
        assert batch["token_type_ids"][row, :n].tolist() == encoded["token_type_ids"][0].tolist()
        assert batch["token_type_ids"][row, :n].sum() > 0
        torch.testing.assert_close(batch["logits"][row], out.logits[0], rtol=2e-3, atol=2e-3)


def test_int8_and_bfloat16_storage_against_float32(sentences, float32_cache, tiny_teacher_dir, tmp_path):
    base = dict(teacher=str(tiny_teacher_dir), features=["cls", "hidden"], hidden_layers=[2])
    exact = float32_cache
    int8 = load(run(sentences, tmp_path, LabelConfig(**base, quantize_hidden=True)).cache_dir)
    bf16 = load(run(sentences, tmp_path, LabelConfig(**base, dtype="bfloat16", shard_format="parquet")).cache_dir)
    import ray

    read = ray.data.read_parquet(str(bf16.path)).take_all()  # parquet caches: Ray Data reads the directory as is
    assert sorted(r["uid"] for r in read) == sorted(bf16.table.column("uid").to_pylist())
    assert {r["uid"]: list(r["logits"]) for r in read} == dict(zip(bf16.table.column("uid").to_pylist(),
                                                                        bf16.table.column("logits").to_pylist()))
    card = run_card_code(bf16.path)  # the card's recipes for a parquet cache
    assert card["table"].num_rows == len(card["ds"]) == card["rows"].count() == len(bf16)
    assert len({exact.path, int8.path, bf16.path}) == 3
    rows = np.arange(0, len(exact), 7)
    want = exact.batch(rows)
    for cache, limit in ((int8, 0.02), (bf16, 0.01)):
        got = cache.batch(rows)
        for key in ("hidden_2", "cls"):
            error = (got[key] - want[key]).norm(dim=-1) / want[key].norm(dim=-1).clamp_min(1e-6)
            assert error[want[key].norm(dim=-1) > 0].max() < limit, (cache.features.hidden_dtype, key)
    sizes = {c.features.hidden_dtype: c.manifest["totals"]["column_bytes_per_example"]["hidden_2"]
             for c in (exact, int8, bf16)}
    assert sizes["int8"] < 0.35 * sizes["float32"] and sizes["bfloat16"] == pytest.approx(sizes["float32"] / 2, rel=0.01)  # + list offsets


def test_minilm_teacher_logits_match_a_direct_forward(sentences, minilm_teacher_dir, tmp_path):
    """The real 6-layer MiniLM encoder with a (random) classification head, as in the demo."""
    teacher = minilm_teacher_dir
    result = run(sentences, tmp_path, LabelConfig(teacher=str(teacher), features=["cls"]))
    cache = load(result.cache_dir)
    assert cache.features.cls_layers == [1, 2, 3, 4, 5, 6] and cache.dims.hidden_size == 384
    picks = list(range(0, len(cache), 97))
    batch = cache.batch(picks)
    texts_a, _ = _rows_by_uid(sentences, cache.table.column("uid").take(pa.array(picks)).to_pylist())
    for row, (_, out) in enumerate(_direct(teacher, texts_a)):
        torch.testing.assert_close(batch["logits"][row], out.logits[0], rtol=5e-3, atol=5e-3)
        torch.testing.assert_close(batch["cls"][row, 5], out.hidden_states[6][0, 0], rtol=1e-2, atol=1e-2)
    assert os.path.basename(result.cache_dir) == result.manifest["fingerprint"][:16]


def test_a_corrupt_cache_shard_is_detected_and_only_it_is_relabelled(sentences, full_cache, tiny_teacher_dir, tmp_path):
    config = LabelConfig(teacher=str(tiny_teacher_dir), features=ALL_FEATURES, batch_size=16, max_batch_tokens=256,
                         topk=2)  # the full cache's, whose output is copied here
    shutil.copytree(full_cache.cache_dir.parent.parent, tmp_path, dirs_exist_ok=True)
    first = run(sentences, tmp_path, config)
    assert first.skipped
    shards = {s["file"]: s["sha256"] for s in first.manifest["shards"]}
    victim = first.cache_dir / "part-00001.arrow"
    victim.write_bytes(victim.read_bytes()[:-100])  # truncated
    untouched = {p.name: p.stat().st_mtime_ns for p in first.cache_dir.glob("part-*") if p != victim}
    again = run(sentences, tmp_path, config)
    assert not again.skipped and again.shards_written == 1
    assert {s["file"]: s["sha256"] for s in again.manifest["shards"]} == shards  # rewritten byte-identical
    assert {p.name: p.stat().st_mtime_ns for p in again.cache_dir.glob("part-*") if p != victim} == untouched


def test_a_topk_cache_stores_the_k_largest_and_the_normaliser_instead_of_logits(sentences, tiny_teacher_dir, tmp_path):
    """A classifier's top-k path (many-label heads): no full logits on disk, indices as uint16, and
    log Σ exp(z/T) so a loss knows the exact top-k probabilities and the tail's mass."""
    config = LabelConfig(teacher=str(tiny_teacher_dir), features=["topk"], topk=1, topk_temperature=2.0)
    cache = load(run(sentences, tmp_path, config).cache_dir)
    assert "logits" not in cache.table.column_names
    assert cache.table.schema.field("topk_indices").type == pa.list_(pa.uint16(), 1)
    picks = np.linspace(0, len(cache) - 1, 12).astype(int)
    batch = cache.batch(picks)
    texts_a, _ = _rows_by_uid(sentences, cache.table.column("uid").take(pa.array(picks)).to_pylist())
    for row, (_, out) in enumerate(_direct(tiny_teacher_dir, texts_a)):
        logits = out.logits[0]
        assert batch["topk_indices"][row].tolist() == logits.topk(1).indices.tolist()
        torch.testing.assert_close(batch["topk_logits"][row], logits.topk(1).values, rtol=2e-3, atol=2e-3)
        torch.testing.assert_close(batch["topk_logsumexp"][row], torch.logsumexp(logits / 2.0, -1), rtol=1e-4, atol=1e-4)


def _by_uid(cache, uids):
    index = {u: i for i, u in enumerate(cache.table.column("uid").to_pylist())}
    return cache.batch([index[u] for u in uids])


def test_recomputed_attention_equals_stored_scores(sentences, float32_cache, tiny_teacher_dir, tmp_path):
    """`attention: recompute` stores h_{l-1} and the teacher's W_q, W_k instead of heads × len² scores:
    the scores rebuilt at training time equal the stored ones (float32: to rounding; int8 hidden
    states: a bounded error), and no attention column reaches the disk."""
    from distill.teacher_batch import TeacherBatch

    def label(name, **options):
        return load(run(sentences, tmp_path / name, LabelConfig(teacher=str(tiny_teacher_dir), **options)).cache_dir)

    stored = float32_cache
    exact = label("recompute", features=["attention"], attention="recompute", dtype="float32")
    coarse = label("int8", features=["attention"], attention="recompute", quantize_hidden=True)
    assert not [c for c in exact.table.column_names if c.startswith("attention")]
    assert {"embedding", "hidden_1"} <= set(exact.table.column_names)  # the inputs of layers 1 and 2
    recomputed, scores = (cache.manifest["totals"]["column_bytes_per_example"] for cache in (exact, stored))
    assert recomputed["embedding"] + recomputed["hidden_1"] < 0.8 * (scores["attention_1"] + scores["attention_2"])
    uids = stored.table.column("uid").to_pylist()[::7][:40]
    reference = _by_uid(stored, uids)
    for cache, tolerance in ((exact, 1e-5), (coarse, 0.05)):
        batch = TeacherBatch(_by_uid(cache, uids), 2, attention_weights=cache.attention_weights())
        assert torch.equal(batch.tensors["input_ids"], reference["input_ids"])
        for layer in (1, 2):
            want, got = reference[f"attention_{layer}"], batch.attention(layer)
            if tolerance < 1e-3:
                torch.testing.assert_close(got, want, rtol=1e-5, atol=tolerance)
            else:  # int8 inputs: relative Frobenius error of the score matrices
                assert float((got - want).norm() / want.norm()) < tolerance
            mask = reference["attention_mask"].bool()
            assert got[~(mask[:, None, :, None] & mask[:, None, None, :]).expand_as(got)].abs().sum() == 0


def test_minilm_relations_are_recomputed_from_one_stored_layer_input(sentences, float32_cache, tiny_teacher_dir,
                                                                     tmp_path):
    """`features: relation` (MiniLM) stores only the last layer's input h_1 and W_q, W_k, W_v with their biases:
    the attention scores rebuilt from them equal the stored ones, and the value relation V Vᵀ / √d equals the one
    from the value vectors a direct forward pass of the teacher produces."""
    from transformers import AutoModelForSequenceClassification

    from distill import attention_capture
    from distill.cache.attention_qk import scaled_relation
    from distill.teacher_batch import TeacherBatch

    config = LabelConfig(teacher=str(tiny_teacher_dir), features=["relation"], dtype="float32")
    cache = load(run(sentences, tmp_path / "relation", config).cache_dir)
    assert cache.features.relation_layers == [2]  # the last layer by default
    assert [c for c in cache.table.column_names if c.startswith(("hidden", "attention", "embedding"))] == ["hidden_1"]
    assert sorted(cache.attention_weights()[2]) == ["key.bias", "key.weight", "num_heads", "query.bias",
                                                    "query.weight", "value.bias", "value.weight"]
    uids = float32_cache.table.column("uid").to_pylist()[::9][:32]
    reference, tensors = _by_uid(float32_cache, uids), _by_uid(cache, uids)
    batch = TeacherBatch(tensors, 2, attention_weights=cache.attention_weights())
    torch.testing.assert_close(batch.attention(2), reference["attention_2"], rtol=1e-5, atol=1e-5)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_teacher_dir,
                                                               attn_implementation=attention_capture.register()).eval()
    with torch.no_grad(), attention_capture.ScoreRecorder([2]) as recorder:
        model(input_ids=tensors["input_ids"], attention_mask=tensors["attention_mask"])
    mask = tensors["attention_mask"].bool()
    torch.testing.assert_close(batch.value_relation(2), scaled_relation(recorder.values[2], recorder.values[2], mask),
                               rtol=1e-4, atol=1e-5)
    assert cache.manifest["totals"]["bytes_per_example"] < float32_cache.manifest["totals"]["bytes_per_example"] / 3
