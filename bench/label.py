"""Teacher labelling throughput: this stage against a bare forward and naive baselines, one run
(docs/results.md, "Labelling").

    python -m bench.label            # about 10 min on 2 CPU cores
    python -m bench.label --quick    # smaller sizes, for a smoke check

MiniLM-L6 with a 2-way head on the sentiment sample cycled to --sources sentences and augmented by
pipelines/configs/augment/tang.yaml (n_iter 20); every measure uses all CPUs. Measures:
  (a) bare forward in the stage's own length buckets: the limit; (a') padded to the longest row;
  (b) the HF text-classification pipeline, batch 64; (b') batches of 64 in input order, padded to
  their longest; (b'') padded to max_length 128, as the TinyBERT and PKD reference code do;
  (c) this stage, logits only (also bfloat16); (d) + [CLS] of every layer; (e) + hidden states and
  attention (also int8). Stage times include actor start-up and model loading, not Ray's start.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

import augment
from bench.common import augmentation, minilm_classifier, rows_by_uid, scaled_input, start_ray, timed
from distill.cache import load
from distill.common.batching import length_buckets
from distill.label import LabelConfig, run
from distill.storage.shards import read_shards


def bare_forward(model, batches) -> None:
    with torch.inference_mode():
        for ids, mask in batches:
            model(input_ids=ids, attention_mask=mask)


def padded(ids: list[list[int]], rows, width: int | None = None):
    width = width or max(len(ids[r]) for r in rows)
    tensor = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        tensor[i, : len(ids[r])] = torch.tensor(ids[r])
        mask[i, : len(ids[r])] = 1
    return tensor, mask


def int8_error(reference_dir: Path, int8_dir: Path, rows: int = 2000) -> str:
    """Relative L2 error per vector of int8 storage against the float16 cache of the same run."""
    reference, quantized = load(reference_dir), load(int8_dir)
    picks = list(range(0, len(reference), max(1, len(reference) // rows)))
    want = reference.batch(picks)
    got = quantized.batch(rows_by_uid(quantized, reference.table.column("uid").take(picks).to_pylist()))
    lines = []
    for key in ("cls", "embedding", "hidden_6"):
        norm = want[key].norm(dim=-1)
        error = ((got[key] - want[key]).norm(dim=-1) / norm.clamp_min(1e-6))[norm > 0]
        lines.append(f"{key} mean {error.mean():.4f} max {error.max():.4f}")
    return "int8 relative error per vector vs float16: " + "; ".join(lines)


def read_speed(cache_dir: Path, batches: int = 200, batch_size: int = 32) -> str:
    """Rows/s of reading padded batches back: pyarrow `cache.batch` vs `datasets` rows + collate, and
    `cache.batch` against gathering the rows alone with `Table.take` (how it read rows before 2026-12-07:
    that copies every chunk of a column per batch, so its cost grows with the cache, apache/arrow#39565)."""
    import pyarrow as pa

    cache = load(cache_dir)
    rng = np.random.default_rng(0)
    picks = [rng.choice(len(cache), batch_size, replace=False).tolist() for _ in range(batches)]
    arrow = timed(lambda: [cache.batch(p) for p in picks])
    take = timed(lambda: [cache.table.take(pa.array(p)) for p in picks])
    dataset = cache.dataset
    hf = timed(lambda: [cache.collate([dataset[i] for i in p]) for p in picks])
    hf_batched = timed(lambda: [cache.collate(_rows(dataset[p])) for p in picks])
    rows = batches * batch_size
    return (f"reading {cache_dir.name} back ({len(cache)} rows, {cache.table.column(0).num_chunks} chunks), batches "
            f"of {batch_size}: pyarrow batch() {rows / arrow:.0f} rows/s; Table.take of the rows alone (no decoding) "
            f"{rows / take:.0f} rows/s (batch() / take = {take / arrow:.1f}x); datasets row by row + collate "
            f"{rows / hf:.0f} rows/s, datasets batched indexing + collate {rows / hf_batched:.0f} rows/s")


def _rows(columns: dict) -> list[dict]:
    """`dataset[list]` returns columns; the collate takes rows."""
    keys = list(columns)
    return [dict(zip(keys, values)) for values in zip(*(columns[k] for k in keys))]


EVERY = ["hidden", "attention", "embedding", "cls"]
STAGE_RUNS = {  # key -> row name, features, precision, quantize_hidden
    "c": ("(c) stage: logits", [], "auto", False),
    "c bf16": ("(c) with precision=bfloat16 (CPU autocast)", [], "bfloat16", False),
    "d": ("(d) stage: + [CLS] per layer", ["cls"], "auto", False),
    "e": ("(e) stage: + hidden, attention, embedding", EVERY, "auto", False),
    "e int8": ("(e) with quantize_hidden (int8 + scale)", EVERY, "auto", True),
}
BASELINES = {"a": "(a) bare forward, length buckets (limit)", "a'": "(a') bare forward, fixed padding to longest",
             "b": "(b) HF pipeline, batch 64, input order", "b'": "(b') fixed batches of 64, input order"}


def baselines(teacher: Path, texts: list[str], seconds: dict[str, float]) -> float:
    """Time (a) to (b''), one process with all threads; returns the naive loop's padded / real tokens."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    tokenizer = AutoTokenizer.from_pretrained(teacher)
    model = AutoModelForSequenceClassification.from_pretrained(teacher).eval()
    ids = tokenizer(texts, truncation=True, max_length=128)["input_ids"]
    lengths, n = np.array([len(x) for x in ids]), len(texts)
    print(f"{n} examples, {lengths.min()}-{lengths.max()} wordpieces (mean {lengths.mean():.1f}), "
          f"{torch.get_num_threads()} CPUs")
    defaults = LabelConfig()
    buckets = length_buckets(lengths, defaults.batch_size, defaults.max_batch_tokens)
    a_batches = [padded(ids, b.tolist()) for b in buckets]
    fixed_batches = [padded(ids, list(range(i, min(i + 64, n))), int(lengths.max())) for i in range(0, n, 64)]
    seconds["a"] = timed(lambda: bare_forward(model, a_batches))
    seconds["a'"] = timed(lambda: bare_forward(model, fixed_batches))
    classifier = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
    seconds["b"] = timed(lambda: classifier(texts, batch_size=64, truncation=True, max_length=128))

    def naive_batches():
        with torch.inference_mode():
            for i in range(0, n, 64):
                batch = tokenizer(texts[i : i + 64], truncation=True, max_length=128, padding=True, return_tensors="pt")
                model(**batch)

    seconds["b'"] = timed(naive_batches)
    # padded to max_length as the TinyBERT / PKD reference code does: slow, so timed on a prefix of
    # 2 048 rows and scaled to n
    prefix = min(n, 2048)
    max_length_batches = [padded(ids, list(range(i, min(i + 64, prefix))), 128) for i in range(0, prefix, 64)]
    seconds["b''"] = timed(lambda: bare_forward(model, max_length_batches)) * n / prefix
    return sum(64 * int(lengths[i : i + 64].max()) for i in range(0, n, 64)) / lengths.sum()


def stage_runs(aug: Path, out: Path, teacher: Path, cpus: int, seconds: dict[str, float]) -> dict[str, tuple]:
    """(c) to (e): one label run each (also timed without actor start-up); key -> cache, totals."""
    runs = {}
    for key, (_, features, precision, int8) in STAGE_RUNS.items():
        config = LabelConfig(teacher=str(teacher), features=features, precision=precision, quantize_hidden=int8)
        result = run(aug, out / f"out-{key.replace(' ', '-')}", config)
        totals = result.manifest["totals"]
        seconds[key] = result.labelling_seconds
        seconds[key + " steady"] = totals["actor_seconds"] / min(cpus, len(result.manifest["shards"]))
        runs[key] = (result.cache_dir, totals)
    return runs


def report(rate: dict[str, float], runs: dict[str, tuple], naive_padding: float) -> None:
    names = {**BASELINES, **{k: v for key, (name, *_) in STAGE_RUNS.items()
                             for k, v in ((key, name), (f"{key} steady", f"    ({key}) without actor start-up"))},
             "b''": "(b'') batches of 64 padded to max_length 128"}
    print(f"\n{'measure':48} {'examples/s':>11} {'bytes/example':>14}")
    for key, name in names.items():
        size = f"{runs[key][1]['bytes_per_example']:.0f}" if key in runs else ""
        print(f"{name:48} {rate[key]:11.0f} {size:>14}")
    totals = runs["c"][1]
    print(f"\npadded / real tokens: stage {totals['padded_tokens'] / totals['real_tokens']:.2f}, "
          f"fixed batches of 64 in input order {naive_padding:.2f}")
    print(int8_error(runs["e"][0], runs["e int8"][0]))
    print(read_speed(runs["e"][0]))
    best_naive = max(rate["b"], rate["b'"])
    print(f"\nc/a  = {rate['c'] / rate['a']:.2f}  (target >= 0.9; without start-up {rate['c steady'] / rate['a']:.2f})")
    print(f"c/b  = {rate['c'] / best_naive:.2f}  (target >= 1.5; against the faster naive loop)")
    a_fixed, b_max_length = rate["a'"], rate["b''"]
    print(f"c/a' = {rate['c'] / a_fixed:.2f},  c/b'' = {rate['c'] / b_max_length:.2f}")
    print(f"c bf16 / b = {rate['c bf16'] / best_naive:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sources", type=int, help="source sentences before augmentation")
    parser.add_argument("--read-cache", type=Path, help="only time reading this teacher cache back")
    parser.add_argument("--batches", type=int, default=200, help="with --read-cache: random batches of 32 to read")
    args = parser.parse_args()
    if args.read_cache:
        print(read_speed(args.read_cache, args.batches))
        return
    logging.basicConfig(level=logging.WARNING)
    cpus = os.cpu_count() or 2
    torch.set_num_threads(cpus)
    import ray

    start_ray(cpus)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        teacher = minilm_classifier(tmp)
        config = augmentation("tang", {"columns.text_a": "sentence", "tang.n_iter": 20, "rows_per_shard": 100})
        augment.run(scaled_input(tmp, args.sources or (300 if args.quick else 1200)), tmp / "aug", config)
        texts = read_shards(tmp / "aug").column("text_a").to_pylist()
        seconds: dict[str, float] = {}
        naive_padding = baselines(teacher, texts, seconds)
        runs = stage_runs(tmp / "aug", tmp, teacher, cpus, seconds)
        report({k: len(texts) / v for k, v in seconds.items()}, runs, naive_padding)
    ray.shutdown()


if __name__ == "__main__":
    main()
