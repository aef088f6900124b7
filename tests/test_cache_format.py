"""The cache format is owned by `distill.cache` and versioned: checked-in caches of the current
format must keep reading back to the same tensors, unknown versions are refused in one line, and
stage 3 (train, students, losses) never imports the labelling stage."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from distill.cache import FORMAT_VERSION, CacheFormatError, FeatureSet, load
from tests.conftest import REPO

FIXTURES = Path(__file__).parent / "fixtures" / f"cache_format_v{FORMAT_VERSION}"
KINDS = ("float16", "bfloat16-int8", "topk-recompute", "token", "per_masked")
OLD_FORMATS = [("cache_format_v2", "float16"), ("cache_format_v2", "bfloat16-int8"),  # still read
               ("cache_format_v3", "float16"), ("cache_format_v3", "bfloat16-int8"), ("cache_format_v3", "topk-recompute")]


@pytest.mark.parametrize("version_dir, kind", [(FIXTURES.name, k) for k in KINDS] + OLD_FORMATS)
def test_a_checked_in_cache_reads_back_unchanged(version_dir, kind):
    """If this fails for the current format, the layout changed: bump FORMAT_VERSION and add a fixture
    for the new version (tests/fixtures/make_cache_fixture.py); older formats this code still reads
    must keep reading back to the tensors they were written with."""
    base = FIXTURES.parent / version_dir
    cache = load(base / kind, verify="full")
    expected = load_file(str(base / f"{kind}.expected.safetensors"))
    batch = cache.batch(list(range(len(cache))))
    assert batch.keys() == expected.keys()
    for name, value in expected.items():
        torch.testing.assert_close(batch[name], value, rtol=0, atol=0, msg=name)
    # the datasets path decodes the same columns the same way
    collated = cache.collate([cache.dataset[i] for i in range(len(cache))])
    for name in cache.features.column_names():
        if name in expected and not name.endswith("_scale"):
            torch.testing.assert_close(collated[name], expected[name], rtol=0, atol=0, msg=name)


def test_the_fixtures_cover_every_layout_and_storage_dtype():
    columns = [c for kind in KINDS for c in load(FIXTURES / kind).features.columns()]
    assert {c.layout for c in columns} >= {"fixed", "per_token", "square", "per_word", "per_masked"}
    assert {c.dtype for c in columns} >= {"float16", "bfloat16", "int8", "int32", "float32", "uint16"}
    assert {c.kind for c in columns} >= {"logits", "topk_indices", "topk_logsumexp", "cls", "embedding", "hidden",
                                         "attention", "scale", "mlm_positions", "mlm_labels"}
    token = load(FIXTURES / "token")
    batch = token.batch(list(range(len(token))))
    assert token.features.head == "token_classification" and token.manifest["totals"]["words_truncated"] > 0
    assert batch["logits"].shape == (*batch["word_starts"].shape, 3) and (batch["labels"] == -100).any()
    recompute = load(FIXTURES / "topk-recompute")
    assert recompute.features.attention_mode == "recompute" and recompute.attention_weights()[1]["num_heads"] == 2


def test_the_per_masked_fixture_decodes_top_k_at_masked_positions_only():
    """A masked-LM teacher over a masked corpus: one entry per masked position, padded per batch with
    position −1 and label −100, in `mlm_positions` order; the top-k are the teacher's largest logits."""
    from distill.teacher_batch import TeacherBatch

    cache = load(FIXTURES / "per_masked")
    batch = cache.batch(list(range(len(cache))))
    assert cache.features.head == "masked_lm" and cache.manifest["input"]["kind"] == "corpus"
    assert {c.name for c in cache.features.columns() if c.layout == "per_masked"} == {
        "mlm_positions", "mlm_labels", "topk_indices", "topk_logits", "topk_logsumexp"}
    real = batch["mlm_positions"] >= 0
    assert (~real).any() and real.any(dim=1).all()  # ragged rows, every row has a masked position
    assert torch.equal(TeacherBatch(batch, 2).masked_positions, real)
    assert (batch["mlm_labels"][~real] == -100).all() and (batch["mlm_labels"][real] >= 5).all()  # words, not specials
    assert batch["topk_indices"].shape == batch["topk_logits"].shape == (*real.shape, 3)
    assert (batch["mlm_positions"][real] < batch["attention_mask"].sum(dim=1, keepdim=True).expand_as(real)[real]).all()
    values = batch["topk_logits"][real]
    assert (values[:, :-1] >= values[:, 1:]).all()  # largest first
    top_mass = (values / cache.features.topk_temperature - batch["topk_logsumexp"][real][:, None]).exp().sum(dim=1)
    assert ((top_mass > 0) & (top_mass < 1 + 1e-3)).all()  # exact probabilities: k = 3 of 30 words leave a tail


@pytest.mark.parametrize("kind", KINDS)
def test_the_typed_feature_description_round_trips_through_the_manifest(kind):
    cache = load(FIXTURES / kind)
    rebuilt = FeatureSet.from_manifest(cache.manifest["features"])
    assert rebuilt.describe() == cache.manifest["features"]
    assert [f.name for f in rebuilt.fields()] == [n for n in cache.table.column_names if n in rebuilt.column_names()]
    for field in rebuilt.fields():
        assert cache.table.schema.field(field.name).type == field.type, field.name


def test_the_cache_travels_with_its_tokenizer_and_teacher_config():
    cache = load(FIXTURES / "float16")
    assert cache.teacher_config().id2label == {0: "negative", 1: "neutral", 2: "positive"}
    assert cache.manifest["labels"]["label2id"] == {"negative": 0, "neutral": 1, "positive": 2}
    ids = cache.tokenizer()("the film is good .")["input_ids"]
    assert ids in [cache.table.column("input_ids")[i].as_py() for i in range(len(cache))]
    assert (FIXTURES / "float16" / "README.md").read_text().startswith("# Teacher cache ")


@pytest.mark.parametrize("version, advice", [(FORMAT_VERSION + 1, "written by a newer distill-data: upgrade"),
                                             (None, "relabel it"), ("two", "relabel it")])
def test_an_unknown_format_version_is_refused_in_one_line(tmp_path, version, advice):
    cache = shutil.copytree(FIXTURES / "float16", tmp_path / "cache")
    manifest = json.loads((cache / "_manifest.json").read_text())
    if version is None:
        del manifest["format_version"]  # a cache written before versioning
    else:
        manifest["format_version"] = version
    (cache / "_manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CacheFormatError, match=advice) as error:
        load(cache)
    assert "\n" not in str(error.value) and f"this code reads version {FORMAT_VERSION}" in str(error.value)


def test_stage_three_never_imports_the_labelling_stage():
    code = ("import sys, distill.train, distill.train.loop, distill.train.online, distill.students, distill.losses, "
            "distill.cache; print(sorted(m for m in sys.modules if m.startswith(('distill.label', 'augment'))))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    assert "distill.train" in code and "distill.students" in code


_MEASURING_POOLS: list = []  # kept alive: a buffer another thread allocates meanwhile may outlive the call


def _peak_arrow_bytes(read) -> int:
    """The most bytes Arrow's memory pool held while `read()` ran (memory-mapped columns hold none)."""
    import pyarrow as pa

    pool, default = pa.proxy_memory_pool(pa.default_memory_pool()), pa.default_memory_pool()
    _MEASURING_POOLS.append(pool)
    pa.set_memory_pool(pool)
    try:
        result = read()
        del result  # freed while its pool is alive
    finally:
        pa.set_memory_pool(default)
    return pool.max_memory()


def test_a_batch_reads_only_its_rows_from_a_many_chunk_cache():
    """A cache of many shards is a table of many chunks. `Table.take` concatenates every chunk of a column
    before taking (apache/arrow#39565): each training batch copied the whole cache (0.4-0.6 s per batch on a
    135k-row TinyBERT cache). A batch must read its rows only, in the order asked, duplicates included."""
    import pyarrow as pa

    from distill.cache.encoding import take_rows

    small = load(FIXTURES / "bfloat16-int8")
    cache = load(FIXTURES / "bfloat16-int8")
    cache.table = pa.concat_tables([small.table] * 3000)  # 18 000 rows in 3 000 chunks
    n = len(small)
    picks = [7, 3, 3, 4, 5, 9000, 17_999]
    whole_columns = _peak_arrow_bytes(lambda: cache.table.take(pa.array(picks)))  # what the old reader did
    assert _peak_arrow_bytes(lambda: cache.batch(picks)) < 0.01 * whole_columns
    got, want = cache.batch(picks), small.batch([p % n for p in picks])
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=0, atol=0, msg=name)
    assert take_rows(cache.table, picks).equals(cache.table.take(pa.array(picks)))
    assert take_rows(cache.table, []).num_rows == 0
    with pytest.raises(IndexError, match="18000 rows"):
        take_rows(cache.table, [0, 18_000])
