"""What a lent GPU measures, each figure against its baseline in the same run, in at most 8 minutes on one
H100 (docs/results.md, "On a GPU").

    python -m bench.gpu --out out/gpu          # on the GPU machine: the table, and out/gpu/gpu.json
    python -m bench.gpu --dry --out /tmp/gpu   # any CPU, tiny models and sizes: the wiring (the tests run it)

1. Labelling: the stage at precision float32 and bfloat16 against the bare forward of the same teacher in
   the stage's own length buckets on the same device; a random bert-base-size classifier (bert-base's
   compute) over the bundled sentiment sample cycled and Tang-augmented.
2. TinyBERT augmentation: the stage with its masked LM on the GPU (GPU actors) against TinyBERT's reference
   algorithm (bench/reference_tinybert.py) with the same masked LM on the same GPU, same sentences and GloVe.
3. Student training: a 6-layer BERT copied from the teacher (KD + CE), steps/s with autocast (bf16 on a
   GPU) against float32.
4. One Ray Train worker holding the GPU (DDP over nccl; gloo on a CPU) against the same steps in process.
Sizes are chosen so the whole run fits 8 minutes on an H100; `--dry` shrinks models and data to seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    alphabetic_words, augmentation, machine_line, random_bert_base, read_sentences, recipe, save_model_once,
    scaled_input, start_ray, synthetic_glove, timed,
)


@dataclass
class Sizes:
    label_sources: int = 4000  # sample sentences (cycled); x (1 + 10 Tang samples) rows labelled
    augment_sentences: int = 300  # sentences through the TinyBERT rules, stage and reference
    glove_words: int = 100_000
    glove_dim: int = 300
    train_steps: int = 200
    batch_size: int = 32


PRECISIONS = ("float32", "bfloat16")
DRY = Sizes(label_sources=40, augment_sentences=8, glove_words=2000, glove_dim=50, train_steps=4, batch_size=8)


def tiny_bert(directory: Path, masked_lm: bool = False) -> Path:
    """`--dry`: a 2-layer, 64-wide BERT over the uncased vocabulary, for wiring checks on any CPU."""
    from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

    config = BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
    model = BertForMaskedLM if masked_lm else BertForSequenceClassification
    return save_model_once(directory / ("tiny-mlm" if masked_lm else "tiny-cls"), lambda: model(config))


def bare_forward_seconds(teacher: Path, cache_dir: Path, device: str) -> dict[str, float]:
    """Seconds of the teacher alone over the cache's rows in the stage's length buckets, per precision
    (batches built and the model loaded once, before timing; one untimed pass each warms kernels)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from bench.label import bare_forward
    from distill.cache import load
    from distill.common.batching import length_buckets
    from distill.label import LabelConfig

    cache, defaults = load(cache_dir), LabelConfig()
    lengths = np.array([len(x) for x in cache.table.column("input_ids").to_pylist()])
    buckets = length_buckets(lengths, defaults.batch_size, defaults.max_batch_tokens)
    batches = [(batch["input_ids"].to(device), batch["attention_mask"].to(device))
               for batch in (cache.batch(b.tolist()) for b in buckets)]
    model = AutoModelForSequenceClassification.from_pretrained(teacher).eval().to(device)

    def run(precision: str) -> None:
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            bare_forward(model, batches)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    seconds = {}
    for precision in PRECISIONS:
        run(precision)
        seconds[precision] = timed(lambda: run(precision))
    return seconds


def labelling(tmp: Path, sizes: Sizes, teacher: Path, device: str) -> tuple[list[dict[str, Any]], Path]:
    """Both precisions' rows, and the float32 cache (for the training measures)."""
    import augment
    from distill.label import LabelConfig, run

    source = scaled_input(tmp, sizes.label_sources)
    augmented = augment.run(source, tmp / "augmented", augmentation("tang", {"columns.text_a": "sentence",
                                                                             "tang.n_iter": 10})).output_dir
    stage, caches = {}, {}
    for precision in PRECISIONS:
        started = time.perf_counter()  # the stage as a user runs it: actors start, the teacher loads
        result = run(augmented, tmp / f"label-{precision}", LabelConfig(teacher=str(teacher), precision=precision))
        stage[precision], caches[precision] = time.perf_counter() - started, result.cache_dir
    rows = result.manifest["totals"]["rows"]  # the same rows at either precision
    bare = bare_forward_seconds(teacher, caches["float32"], device)
    return [{"measure": f"labelling, {p}", "rows": rows, "stage_rows_per_s": rows / stage[p],
             "baseline": "bare forward, same buckets", "baseline_rows_per_s": rows / bare[p], "ratio": bare[p] / stage[p]}
            for p in PRECISIONS], caches["float32"]


def tinybert_augmentation(tmp: Path, sizes: Sizes, mlm: Path, device: str) -> dict[str, Any]:
    import augment
    from bench.reference_tinybert import ReferenceTinyBert

    source = scaled_input(tmp, sizes.augment_sentences)
    glove = synthetic_glove(tmp, alphabetic_words(read_sentences(source)), sizes.glove_words, sizes.glove_dim)
    config = augmentation("tinybert", {"columns.text_a": "sentence", "rules.mlm.model": str(mlm),
                                       "rules.glove.path": str(glove), "workers": 1})
    if sizes is not DRY:  # the GloVe conversion and first imports, outside the timing
        augment.run(source, tmp / "aug-warm", config)
    stage = timed(lambda: augment.run(source, tmp / "aug", config))
    reference = ReferenceTinyBert(mlm, glove, config.spacy_model, device=device).run(read_sentences(source))
    n = sizes.augment_sentences
    return {"measure": "TinyBERT augmentation (masked LM + GloVe)", "rows": n, "stage_rows_per_s": n / stage,
            "baseline": "TinyBERT's reference algorithm, same device", "baseline_rows_per_s": n / reference.seconds,
            "ratio": reference.seconds / stage}


def training(tmp: Path, sizes: Sizes, cache_dir: Path, layers: int) -> list[dict[str, Any]]:
    """Steps/s of a BERT student copied from the teacher (KD + CE): autocast against float32, then the
    autocast run on one Ray Train worker that holds the GPU."""
    from distill.train.loop import train, train_on_ray

    def config(amp: str):
        return recipe("pkd_skip", {"student.num_layers": layers, "batch_size": sizes.batch_size, "amp": amp,
                                   "max_steps": sizes.train_steps, "warmup_ratio": 0.0, "checkpoint_every": 10**9},
                      ("losses.pkd",))

    def per_second(result) -> float:
        return sizes.train_steps / (result.loop_seconds or result.seconds)

    steps = {amp: per_second(train(config(amp), cache_dir, tmp / f"train-{amp}", teacher_report=False))
             for amp in ("off", "auto")}
    gpus = 1.0 if _device() != "cpu" else 0.0
    kwargs = dict(config=config("auto"), cache_dir=cache_dir, run_dir=tmp / "train-ray", dev_file=None,
                  dev_columns=None, teacher_report=False, teacher=None, overwrite=False, verify="full")
    on_ray = per_second(train_on_ray(kwargs, 1, None, gpus))
    return [{"measure": f"BERT-{layers} student training, autocast", "rows": sizes.train_steps,
             "stage_rows_per_s": steps["auto"], "baseline": "float32 (amp off)", "baseline_rows_per_s": steps["off"],
             "ratio": steps["auto"] / steps["off"]},
            {"measure": f"one Ray Train worker ({'nccl' if gpus else 'gloo'}), autocast", "rows": sizes.train_steps,
             "stage_rows_per_s": on_ray, "baseline": "the same steps in process", "baseline_rows_per_s": steps["auto"],
             "ratio": on_ray / steps["auto"]}]


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| measure | rows / steps | this project, per s | baseline | baseline, per s | ratio |",
             "|---|---:|---:|---|---:|---:|"]
    lines += [f"| {r['measure']} | {r['rows']:,} | {r['stage_rows_per_s']:,.1f} | {r['baseline']} | "
              f"{r['baseline_rows_per_s']:,.1f} | {r['ratio']:.2f} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("out/gpu"))
    parser.add_argument("--dry", action="store_true", help="tiny models and sizes on any device: the wiring only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sizes, device = (DRY if args.dry else Sizes()), _device()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DISTILL_DATA_CACHE", str(args.out / "cache"))  # GloVe conversions, before Ray starts
    started = time.perf_counter()
    build = tiny_bert if args.dry else random_bert_base
    teacher, mlm = build(args.out), build(args.out, masked_lm=True)  # kept: a rerun skips building them
    runs = Path(tempfile.mkdtemp(prefix="runs-", dir=args.out))  # fresh: every stage runs, none is reused
    import ray

    if not ray.is_initialized():  # (the tests run it on their session's Ray)
        start_ray(os.cpu_count() or 2)
    rows, cache_dir = labelling(runs, sizes, teacher, device)
    rows.append(tinybert_augmentation(runs, sizes, mlm, device))
    rows += training(runs, sizes, cache_dir, 2 if args.dry else 6)
    shutil.rmtree(runs, ignore_errors=True)
    text = table(rows) + f"\n\n{machine_line()}; {'dry run, ' if args.dry else ''}{time.perf_counter() - started:.0f} s"
    print(text)
    (args.out / "gpu.json").write_text(json.dumps({"rows": rows, "machine": machine_line(), "dry": args.dry}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
