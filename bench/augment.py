"""Augmentation throughput, each section against its baseline in one run (docs/results.md, "Augmentation"):

1. Tang rules (pipelines/configs/augment/tang.yaml: mask, pos, ngram alone and together), 1 vs 2
   Ray workers, on the sentiment sample cycled to --sentences rows (Ray started before timing).
2. TinyBERT rules (pipelines/configs/augment/tinybert.yaml, as `python -m augment` runs it, each run
   cold) on the first --sizes SST-2 sentences, against TinyBERT's reference algorithm
   (bench/reference_tinybert.py); large inputs time every --reference-every-th sentence ("est.").
3. Candidate overlap of `rules.mlm.masks_per_query` modes with mode 1 and queries/s, on the proxy
   masked LM of bench/proxy_mlm.py (trained once into out/proxy-mlm, ~11 min).

    python -m bench.augment                  # about 20 min on 2 idle CPU cores (+11 min once: the proxy MLM)
    python -m bench.augment --only tinybert  # sections 2 and 3, about 12 min (the reference alone: ~3-5 min)
    python -m bench.augment --quick          # tiny sizes, a smoke check: about 3 min idle (8 min at load 8)

Offline models and data, written once to --scratch: a random bert-base-size BertForMaskedLM over
the uncased vocabulary (bert-base compute) and a synthetic 100 000 x 300 GloVe file holding every
word of the first 2 000 SST-2 sentences (its .npy conversion is done before timing).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from augment import AugmentConfig, run
from augment.cli import build_parser, overrides_from_args
from augment.rules import build_rule
from bench.common import (
    CONFIGS, REPO, SST2_TRAIN, alphabetic_words, augmentation, overlap, random_bert_base, read_sentences, scaled_input,
    split_words, sst2_head, start_ray, synthetic_glove, time_candidates,
)
from bench.reference_tinybert import ReferenceResult, ReferenceTinyBert

RECIPE = CONFIGS / "augment" / "tinybert.yaml"
PROXY_DIR = REPO / "out" / "proxy-mlm"  # bench/proxy_mlm.py's own default --out: a model built there is reused
GLOVE_SOURCE_SENTENCES = 2000  # the GloVe file holds every word of this many SST-2 sentences
THREADS = 2


# --- 1. Tang rules -------------------------------------------------------------------------------
def time_run(input_path: Path, config: AugmentConfig, scratch: Path) -> tuple[float, int]:
    """One `augment.run` into a scratch folder (removed after): its seconds and output rows."""
    out = Path(tempfile.mkdtemp(dir=scratch))
    started = time.perf_counter()
    result = run(input_path, out / "aug", config)
    seconds = time.perf_counter() - started
    shutil.rmtree(out)
    return seconds, result.manifest["totals"]["rows"]


def tang_section(args: argparse.Namespace, scratch: Path) -> None:
    import ray

    start_ray(THREADS)
    tang = {"mask": {}, "pos": {}, "ngram": {}}
    cases = [(name, args.sentences, {name: {}}) for name in tang] + [
        ("tang (mask+pos+ngram)", args.sentences, tang), (f"tang, only {args.small} sentences", args.small, tang)]
    print(f"\n## Tang rules: whole stage wall time, Ray started before timing ({THREADS} CPU cores, "
          f"the sentiment sample cycled to {args.sentences} sentences)\n")
    print("| rules | sentences | s, 1 worker | rows/s, 1 worker | s, 2 workers | rows/s, 2 workers | 2w / 1w |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, n, rules in cases:
        path = scaled_input(scratch, n)
        shard = max(1, min(1000, math.ceil(n / 8)))  # at least 8 shards: enough blocks for 2 workers
        configs = [augmentation("tang", {"columns.text_a": "sentence", "rules": rules, "workers": workers,
                                         "rows_per_shard": shard}) for workers in (1, 2)]
        (t1, rows1), (t2, rows2) = (time_run(path, config, scratch) for config in configs)
        assert rows1 == rows2
        print(f"| {name} | {n:,} | {t1:.1f} | {rows1 / t1:,.0f} | {t2:.1f} | {rows2 / t2:,.0f} | {t1 / t2:.2f} |",
              flush=True)
    ray.shutdown()


# --- 2. TinyBERT rules against the reference algorithm --------------------------------------------
def user_config(model_dir: Path, glove: Path, workers: int) -> AugmentConfig:
    """What `python -m augment IN OUT --recipe tinybert.yaml --text-a sentence --mlm-model M
    --glove G --workers W` runs: the CLI's own flag-to-override translation, nothing else set."""
    argv = ["in", "out", "--recipe", str(RECIPE), "--text-a", "sentence", "--mlm-model", str(model_dir),
            "--glove", str(glove), "--workers", str(workers)]
    return AugmentConfig.load(RECIPE, overrides_from_args(build_parser().parse_args(argv)))


def warm_glove_cache(model_dir: Path, glove: Path) -> float:
    """The stage's once-per-machine .npy conversion, done before timing (a user pays it once):
    the glove rule's own setup with the user's options, so the cache key is the one the stage uses."""
    started = time.perf_counter()
    build_rule("glove", user_config(model_dir, glove, 1).rules["glove"]).setup()
    return time.perf_counter() - started


def stage_defaults(model_dir: Path, glove: Path) -> str:
    """The recipe's effective mlm settings, so the table says what 'defaults' meant on this machine."""
    config = user_config(model_dir, glove, 1)
    mlm = build_rule("mlm", config.rules["mlm"])
    shown = {f.name: getattr(mlm, f.name) for f in dataclasses.fields(mlm) if f.compare and f.name != "model"}
    return (f"mlm {shown} (dtype resolves to {mlm.resolved_dtype('cpu')} on this CPU), "
            f"rows_per_shard {config.rows_per_shard}, n_aug {config.tinybert.n_aug}, p {config.tinybert.p}")


def tinybert_section(args: argparse.Namespace, scratch: Path, model_dir: Path, glove: Path) -> None:
    import ray
    import torch

    torch.set_num_threads(THREADS)
    convert_s = warm_glove_cache(model_dir, glove)
    reference = ReferenceTinyBert(model_dir, glove, AugmentConfig().spacy_model)
    print(f"\n## TinyBERT rules (mlm + glove) on SST-2: the stage with the user's defaults vs the reference "
          f"algorithm ({THREADS} CPU cores)\n")
    print("| input | sentences | MLM queries | GloVe lookups | reference s | stage s, 1 worker | stage s, 2 workers "
          "| speed-up 1w | speed-up 2w | sentences/s (2w) | queries/s (2w) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    # Every run is cold: `augment.run` starts Ray, its actors and loads the models, as the CLI does.
    # One untimed run first: the driver's first-time imports (Ray Data, pyarrow kernels) and the
    # page cache would otherwise all land on the first timed row.
    assert not ray.is_initialized(), "a cold run must start its own Ray"
    time_run(sst2_head(scratch, args.sizes[0], args.sst2), user_config(model_dir, glove, 1), scratch)
    rows = []
    for n, every in zip(args.sizes, args.reference_every):
        path = sst2_head(scratch, n, args.sst2)
        (s1, _), (s2, _) = (time_run(path, user_config(model_dir, glove, w), scratch) for w in (1, 2))
        ref = reference.run(read_sentences(path), every)
        rows.append((n, ref, s1, s2))
        est = f" (est., 1/{every})" if ref.estimated else ""
        print(f"| SST-2 first {n:,} | {n:,} | {ref.queries:,} | {ref.glove_lookups:,} | {ref.seconds:.1f}{est} "
              f"| {s1:.1f} | {s2:.1f} | {ref.seconds / s1:.2f} | {ref.seconds / s2:.2f} | {n / s2:.1f} "
              f"| {ref.queries / s2:.1f} |", flush=True)
    tinybert_notes(rows, reference, convert_s, stage_defaults(model_dir, glove))


def tinybert_notes(rows: list[tuple[int, ReferenceResult, float, float]], reference: ReferenceTinyBert,
                   convert_s: float, defaults: str) -> None:
    """What each column includes, the sampling, and the stage's fixed cost."""
    print(f"\n- reference s: its per-sentence work (spaCy split, one float32 forward per single-piece word, "
          f"a float64 100 000-word dot product + argsort per multi-piece word, 20 samples), one process, "
          f"{THREADS} torch threads, under inference_mode. Not counted: its one-off setup (model load "
          f"{reference.model_seconds:.1f} s, first 100 000 GloVe vectors {reference.glove_seconds:.1f} s).")
    for n, ref, _, _ in rows:
        if ref.estimated:
            print(f"- the {n:,}-sentence reference time is an ESTIMATE: every {ref.every}th sentence timed "
                  f"({ref.timed_sentences} sentences, {ref.work_seconds:.1f} s), scaled by {n}/{ref.timed_sentences}.")
    print(f"- stage s: one cold `augment.run` each (as `python -m augment`): Ray start, actor start, model load, "
          f"word split, candidates, samples, shard commits, manifest. Defaults in effect: {defaults}. "
          f"Done before timing: the GloVe .npy conversion ({convert_s:.1f} s, once per machine) and one untimed "
          f"run (the driver's first-time imports, which a fresh `python -m augment` process also pays).")
    n0, _, f1, f2 = rows[0]
    print(f"- fixed cost: the {n0}-sentence run takes {f1:.1f} s (1 worker) / {f2:.1f} s (2 workers), "
          "nearly all start-up.")
    for n, ref, s1, s2 in rows[1:]:
        if s1 > 2 * f1 and s2 > 2 * f2:  # else the difference is mostly noise
            print(f"  Without it, {n:,} sentences: speed-up {ref.seconds / (s1 - f1):.2f} (1w), "
                  f"{ref.seconds / (s2 - f2):.2f} (2w).")
    print("- queries/s (2w): the reference's masked-LM query count over the stage's whole 2-worker wall time.")


# --- 3. candidate overlap of masks_per_query modes --------------------------------------------------
Variant = tuple[int | str, str]  # (masks_per_query, dtype)
VARIANTS: list[Variant] = [(1, "float32"), (2, "float32"), (4, "float32"), ("all", "float32"),
                           (1, "int8"), ("all", "int8"), (1, "bfloat16"), ("all", "bfloat16")]


def candidate_overlap(model_dir: Path, sentences: list[str], variants: list[Variant]) -> list[dict[str, Any]]:
    """Per (masks_per_query, dtype) variant, same threads: queries/s, forward calls, and the mean
    top-15 overlap of its candidates with the first variant's (pass (1, float32) first: the
    reference's query and precision)."""
    words = split_words(sentences)
    results, base = [], None
    for mode, dtype in variants:
        result = time_candidates(model_dir, words, mode, dtype)
        found = result.pop("candidates")
        base = base or found
        results.append({**result, "mode": f"{mode}, {dtype}",
                        "overlap": sum(map(overlap, base, found)) / max(1, result["queries"])})
    results.append(reference_mlm_row(model_dir, words, base))
    return results


def reference_mlm_row(model_dir: Path, words: list, base: list[list[str]]) -> dict[str, Any]:
    """The reference's masked-LM path on the same queries: its speed, and a check that its
    candidates are mode 1's (they differ only where punctuation or [unused] tokens reach its top-K)."""
    import torch

    reference = ReferenceTinyBert(model_dir, None, AugmentConfig().spacy_model)
    queries = [(w, i) for w in words for i, tok in enumerate(w.tokens) if reference.kind(tok) == "mlm"]
    with torch.inference_mode():
        for w, i in queries[:8]:
            reference.mlm_candidates(w, i)
        started = time.perf_counter()
        found = [reference.mlm_candidates(w, i) for w, i in queries]
    seconds = time.perf_counter() - started
    return {"mode": "reference (batch 1, LM head on every token)", "queries": len(queries), "seconds": seconds,
            "forward_calls": len(queries), "sequences": len(queries),
            "overlap": sum(map(overlap, base, found)) / max(1, len(queries))}


def overlap_section(args: argparse.Namespace, scratch: Path, model_dir: Path) -> None:
    import torch

    torch.set_num_threads(THREADS)
    model, note = proxy_model(args.quick)
    if model is None:
        if not args.quick:
            print(f"\n(candidate overlap skipped: {note})")
            return
        model, note = model_dir, "RANDOM bert-base weights: the overlap figures mean nothing, a smoke check only"
    sentences = read_sentences(sst2_head(scratch, args.overlap_sentences, args.sst2))
    results = candidate_overlap(model, sentences, VARIANTS)
    print(f"\n## Masked-LM candidates by masks_per_query and dtype: first {args.overlap_sentences} SST-2 "
          f"sentences, {THREADS} torch threads, model {model.name} ({note})\n")
    print("| masks_per_query, dtype | queries | sequences encoded | forward calls | queries/s "
          "| mean top-15 overlap with (1, float32) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['mode']} | {r['queries']:,} | {r['sequences']:,} | {r['forward_calls']:,} "
              f"| {r['queries'] / r['seconds']:.1f} | {r['overlap']:.3f} |")


def proxy_model(quick: bool) -> tuple[Path | None, str]:
    """The trained proxy MLM (built now unless --quick or already built), or None and why not."""
    try:
        from bench.proxy_mlm import MARKER, build_proxy_mlm
    except ImportError as err:
        return None, f"bench/proxy_mlm.py not importable ({err})"
    if quick and not (PROXY_DIR / "minilm-mlm-wikitext2" / MARKER).exists():
        return None, f"no proxy MLM built in {PROXY_DIR} (python -m bench.proxy_mlm, ~11 min)"
    print(f"\n(proxy MLM: {PROXY_DIR}; trained now if absent, ~11 min once)", flush=True)
    return build_proxy_mlm(PROXY_DIR), "proxy real MLM: MiniLM-L6 + MLM head trained on WikiText-2"


# --- main ----------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("tang", "tinybert", "tinybert-stage", "overlap"),
                        help="run one section: tang (1), tinybert (2 and 3), tinybert-stage (2), overlap (3)")
    parser.add_argument("--sentences", type=int, default=60000, help="source sentences for the Tang rules (SST-2: 67k)")
    parser.add_argument("--small", type=int, default=2000, help="a small Tang run showing Ray's fixed start-up cost")
    parser.add_argument("--sst2", type=Path, default=SST2_TRAIN, help="SST-2 train.tsv (header sentence<TAB>label)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 200, 2000],
                        help="TinyBERT inputs: the first N SST-2 sentences each; the first shows the fixed cost")
    parser.add_argument("--reference-every", type=int, nargs="+", default=[1, 1, 10], metavar="K",
                        help="per --sizes entry: time the reference on every K-th sentence and scale up (1 = all)")
    parser.add_argument("--overlap-sentences", type=int, default=200, help="SST-2 sentences for the overlap table")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "distill-bench-augment",
                        help="models, GloVe file and .npy cache, kept between runs")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke check")
    args = parser.parse_args()
    if args.quick:
        args.sentences, args.small, args.overlap_sentences = 400, 200, 4
        args.sizes, args.reference_every = [4, 16], [1, 4]
    if len(args.reference_every) != len(args.sizes):
        parser.error("--reference-every needs one K per --sizes entry")
    return args


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars, once per model load
    args.scratch.mkdir(parents=True, exist_ok=True)
    os.environ["DISTILL_DATA_CACHE"] = str(args.scratch / "cache")  # before any Ray start: workers inherit it
    runs = Path(tempfile.mkdtemp(prefix="runs-", dir=args.scratch))
    try:
        if args.only in (None, "tang"):
            tang_section(args, runs)
        model_dir = random_bert_base(args.scratch, masked_lm=True) if args.only != "tang" else None
        if args.only in (None, "tinybert", "tinybert-stage"):
            started = time.perf_counter()  # the 100 000 x 300 GloVe file holding the first 2 000 sentences' words
            words = alphabetic_words(read_sentences(sst2_head(args.scratch, GLOVE_SOURCE_SENTENCES, args.sst2)))
            glove, glove_s = synthetic_glove(args.scratch, words), time.perf_counter() - started
            print(f"\n(GloVe file {glove.name}: {glove.stat().st_size / 1e6:.0f} MB, ready in {glove_s:.1f} s)")
            tinybert_section(args, runs, model_dir, glove)
        if args.only in (None, "tinybert", "overlap"):
            overlap_section(args, runs, model_dir)
    finally:
        shutil.rmtree(runs, ignore_errors=True)


if __name__ == "__main__":
    main()
