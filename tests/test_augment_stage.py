"""The augmentation stage end to end on real spaCy and a real local Ray (num_cpus=2)."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from augment import AugmentConfig, run
from distill.storage.shards import read_shards
from tests.conftest import REPO, SAMPLES

pytestmark = pytest.mark.slow
SENTIMENT = SAMPLES / "sentiment.csv"
PARAPHRASE = SAMPLES / "paraphrase.jsonl"


def _config(**kwargs) -> AugmentConfig:
    base = {"columns": {"text_a": "sentence"}, "tang": {"n_iter": 5}}
    base.update(kwargs)
    return AugmentConfig.from_dict(base)


def _rows(directory):
    table = read_shards(directory)
    return sorted(zip(*(table.column(c).to_pylist() for c in ("uid", "text_a", "text_b", "label", "rule"))))


@pytest.fixture(scope="module")
def reference_run(ray_local, tmp_path_factory):
    """One worker, 100 source rows per shard."""
    out = tmp_path_factory.mktemp("ref")
    result = run(SENTIMENT, out, _config(workers=1, rows_per_shard=100))
    return out, result


def test_output_schema_originals_and_readers(reference_run):
    out, result = reference_run
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["complete"] and len(manifest["shards"]) == 3
    assert manifest["totals"]["source_rows"] == 300 and manifest["totals"]["rejected_rows"] == 0
    table = read_shards(out)
    assert table.num_rows == manifest["totals"]["rows"] == sum(s["rows"] for s in manifest["shards"])
    assert table.schema.names == ["uid", "source_id", "aug_index", "text_a", "text_b", "label", "rule"]
    uids = table.column("uid").to_pylist()
    assert len(set(uids)) == len(uids)
    originals = table.filter(table.column("aug_index").to_numpy() == 0)
    assert originals.num_rows == 300 and set(originals.column("rule").to_pylist()) == {"original"}
    # 5 Tang samples per example, duplicates dropped: between 1 and 5 augmentations each.
    assert 300 * 2 < table.num_rows <= 300 * 6
    assert set(table.column("rule").to_pylist()) <= {
        "original", "mask", "pos", "ngram", "mask+pos", "mask+ngram", "pos+ngram", "mask+pos+ngram"
    }
    # Readable untouched by pyarrow, ray.data and datasets.
    assert pq.read_table(out / "part-00000.parquet").num_rows == manifest["shards"][0]["rows"]
    import datasets
    import ray

    assert ray.data.read_parquet(str(out)).count() == table.num_rows
    loaded = datasets.load_dataset("parquet", data_files=str(out / "part-*.parquet"), split="train")
    assert len(loaded) == table.num_rows and loaded.features["text_b"].dtype == "string"


def test_same_rows_with_two_workers_and_other_shard_size(reference_run, tmp_path):
    out, _ = reference_run
    other = tmp_path / "other"
    run(SENTIMENT, other, _config(workers=2, rows_per_shard=37))
    assert _rows(other) == _rows(out)


def test_rerun_of_finished_stage_does_nothing(reference_run):
    out, _ = reference_run
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*")}
    again = run(SENTIMENT, out, _config(workers=1, rows_per_shard=100))
    assert again.skipped and again.shards_written == 0
    assert mtimes == {p.name: p.stat().st_mtime_ns for p in out.glob("part-*")}


def test_corrupt_shard_is_detected_and_only_it_is_rewritten(ray_local, tmp_path):
    out = tmp_path / "out"
    config = _config(workers=2, rows_per_shard=100)
    run(SENTIMENT, out, config)
    before = _rows(out)
    victim = out / "part-00001.parquet"
    victim.write_bytes(victim.read_bytes()[:-100])
    untouched = (out / "part-00000.parquet").stat().st_mtime_ns
    result = run(SENTIMENT, out, config)
    assert not result.skipped and result.shards_written == 1
    assert (out / "part-00000.parquet").stat().st_mtime_ns == untouched
    assert _rows(out) == before


def test_sentence_pairs_stay_pairs(ray_local, tmp_path):
    config = AugmentConfig.from_dict({"columns": {"text_a": "sentence1", "text_b": "sentence2"}, "workers": 2})
    result = run(PARAPHRASE, tmp_path / "pairs", config)
    table = read_shards(tmp_path / "pairs")
    assert result.manifest["is_pair"]
    assert table.column("text_b").null_count == 0
    originals = {r["source_id"]: r for r in table.to_pylist() if r["aug_index"] == 0}
    one_side = 0
    augmented = [r for r in table.to_pylist() if r["aug_index"] > 0]
    for row in augmented:
        source = originals[row["source_id"]]
        assert row["label"] == source["label"]
        one_side += (row["text_a"] == source["text_a"]) != (row["text_b"] == source["text_b"])
    assert len(augmented) > 200 * 5  # n_iter = 10 for pairs, minus duplicates
    assert 0.5 < one_side / len(augmented) < 0.8  # d-bert: 2/3 of samples touch one side


def test_tinybert_rules_with_tiny_models(ray_local, tmp_path, tiny_mlm_dir, tiny_glove):
    """Default rows_per_shard (auto) cuts 40 rows into 20 shards; 1 or 2 workers, same rows."""
    lines = SENTIMENT.read_text(encoding="utf-8").splitlines()
    small = tmp_path / "small.csv"
    small.write_text("\n".join(lines[:41]) + "\n", encoding="utf-8")
    tables = []
    for workers in (2, 1):
        config = _config(rules={"mlm": {"model": str(tiny_mlm_dir)}, "glove": {"path": str(tiny_glove)}},
                         tinybert={"n_aug": 4}, workers=workers)
        result = run(small, tmp_path / f"tb{workers}", config)
        tables.append(read_shards(tmp_path / f"tb{workers}"))
        assert result.manifest["rows_per_shard"] == 2 and len(result.manifest["shards"]) == 20
    table = tables[0]
    assert table.equals(tables[1])
    rules = set(table.column("rule").to_pylist())
    assert "mlm" in rules and rules <= {"original", "mlm", "glove", "mlm+glove"}
    assert result.manifest["models"]["mlm"]["fingerprint"]
    assert 40 < table.num_rows <= 40 * 5


def test_bad_rows_are_rejected_and_the_run_continues(ray_local, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"sentence,label\ngood one here,1\n,0\nbad \xff byte,1\nanother good one,0\n")
    result = run(path, tmp_path / "out", _config())
    rejects = [json.loads(line) for line in (tmp_path / "out" / "_rejects.jsonl").read_text().splitlines()]
    assert [(r["row"], r["field"]) for r in rejects] == [(2, "sentence"), (3, "sentence")]
    assert result.manifest["totals"]["rejected_rows"] == 2
    assert result.manifest["totals"]["source_rows"] == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope.csv", "OUT"], "error: nope.csv: input file not found"),
        ([str(SENTIMENT), "OUT", "--rules", "mask,shout"], "error: unknown rule 'shout' (known: glove, mask, mention, mlm, ngram, pos)"),
    ],
)
def test_cli_errors_are_one_line_and_nonzero(tmp_path, args, message):
    args = [a.replace("OUT", str(tmp_path / "o")) for a in args]
    proc = subprocess.run([sys.executable, "-m", "augment", *args], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [message]


def test_cli_flags_become_typed_overrides():
    from augment.cli import build_parser, overrides_from_args
    from augment.config import AugmentConfig

    args = build_parser().parse_args(
        ["in.csv", "out", "--rules", "mlm,glove", "--text-a", "yes", "--label", "", "--glove", "g.txt", "--seed", "3",
         "--set", "tinybert.n_aug=7"]
    )
    config = AugmentConfig.load(None, overrides_from_args(args))
    assert list(config.rules) == ["mlm", "glove"] and config.rules["glove"] == {"path": "g.txt"}
    assert config.columns.text_a == "yes" and config.columns.label is None
    assert config.seed == 3 and config.tinybert.n_aug == 7


def test_arrow_shards_hold_the_same_rows_and_memory_map_in_datasets(reference_run, tmp_path):
    import datasets

    out, _ = reference_run
    arrow_out = tmp_path / "arrow"
    run(SENTIMENT, arrow_out, _config(workers=2, rows_per_shard=100, shard_format="arrow"))
    assert _rows(arrow_out) == _rows(out)
    files = sorted(arrow_out.glob("part-*.arrow"))
    loaded = datasets.concatenate_datasets([datasets.Dataset.from_file(str(f)) for f in files])
    assert len(loaded) == read_shards(out).num_rows
