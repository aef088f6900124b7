"""What masking several words per masked-LM query costs downstream: `rules.mlm.masks_per_query`
(docs/results.md, "Masked-LM query modes").

    python -m bench.experiments.mlm_modes --out out/mlm-modes                # about 25 min (proxy MLM built)
    python -m bench.experiments.mlm_modes --out out/mlm-modes-quick --quick  # smoke check, about 3 min

TinyBERT's reference masks one word per query; k words (or all) need far fewer forward passes,
but each prediction sees less of its context. Same sentences, seeds and student budget per mode:
hold out the last SST-2 rows (bench/makers/sst2_split.py); fine-tune the MiniLM-L6 teacher on the
first `--teacher-rows`; augment the first `--sources` rows with the mlm rule only
(tinybert.yaml without glove), label them, train the BiLSTM of tang_bilstm.yaml for exactly
`--steps` steps per mode and seed, plus a no-augmentation baseline; and per mode, the candidates'
top-15 overlap with mode 1, sequences, forward calls and time. The masked LM is bench/proxy_mlm.py's
(a weak proxy for bert-base-uncased); every mode runs in `--dtype` unless its spec names one
(`all:auto` is the stage's default). Every step is cached under `--out`: a rerun resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    ORIGINALS_ONLY, REPO, SENTENCE_LABEL, SST2_TRAIN, augmentation, digest, finetune_teacher, labelled_cache,
    machine_line, mean_std, overlap, read_sentences, recipe, reuse_or_run, run_timed, split_words, time_candidates,
)
from bench.makers.sst2_split import head, tail_split
from bench.proxy_mlm import MARKER, build_proxy_mlm
from distill.common.columns import Columns
from distill.common.ray_runtime import ray_session
from distill.train.loop import train

log = logging.getLogger("bench")
BASELINE = "none"  # the no-augmentation row


@dataclass
class Plan:
    """Sizes of one run; the defaults take about 25 minutes on 2 CPU cores."""

    dev_rows: int = 2000
    teacher_rows: int = 8000
    sources: int = 1000
    steps: int = 800  # BiLSTM optimizer steps (batch 50), the same for every mode and the baseline
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    # masks_per_query[:dtype] specs; a bare mode uses `dtype`. "all:auto" is the stage's default.
    modes: list[str] = field(default_factory=lambda: ["1", "3", "all", "all:auto"])
    dtype: str = "float32"


QUICK = Plan(dev_rows=500, teacher_rows=1000, sources=120, steps=60, seeds=[0])


def split_spec(spec: str, dtype: str) -> tuple[int | str, str]:
    """`"3"` -> (3, dtype); `"all:int8"` -> ("all", "int8")."""
    mode, _, own = str(spec).partition(":")
    return ("all" if mode == "all" else int(mode)), own or dtype


def build_caches(sources: Path, out: Path, teacher: Path, proxy: Path, plan: Plan) -> dict[str, tuple[Path, dict]]:
    """One labelled cache per mode (the mlm rule only) and the baseline's (the sources as they are)."""
    label = {"teacher": str(teacher), "features": []}
    caches = {}
    with ray_session(None):
        cache = labelled_cache(sources, out / "cache-none", augmentation("tang", {"columns": SENTENCE_LABEL,
                                                                                   **ORIGINALS_ONLY}), label)
        caches[BASELINE] = (cache.cache_dir, cache.totals)
        for spec in plan.modes:
            mode, dtype = split_spec(spec, plan.dtype)
            config = augmentation("tinybert", {"columns": SENTENCE_LABEL, "rules.mlm.model": str(proxy),
                                               "rules.mlm.masks_per_query": mode, "rules.mlm.dtype": dtype},
                                  without=("rules.glove",))
            cache = labelled_cache(sources, out / f"cache-mlm-{spec.replace(':', '-')}", config, label)
            caches[spec] = (cache.cache_dir, cache.totals)
            log.info("mode %s: %d labelled rows", spec, caches[spec][1]["rows"])
    return caches


def candidate_stats(proxy: Path, sources: Path, out: Path, plan: Plan) -> dict[str, dict[str, Any]]:
    """Per mode: queries, sequences, forward calls, seconds and mean top-15 overlap with mode 1,
    each mode's candidates cached in `out/candidates/` (2 torch threads)."""
    import torch

    torch.set_num_threads(2)
    sentences = read_sentences(sources)
    marker = (proxy / MARKER).read_text()

    def candidates(spec: str) -> dict[str, Any]:
        mode, dtype = split_spec(spec, plan.dtype)
        return reuse_or_run(out / "candidates" / f"mode-{spec.replace(':', '-')}.json",
                            {"key": digest(str(proxy), marker, sentences, spec, plan.dtype)},
                            lambda: {**time_candidates(proxy, split_words(sentences), mode, dtype), "mode": spec})

    reference = candidates("1")["candidates"]
    stats = {}
    for spec in plan.modes:
        found = candidates(spec)
        pairs = [(a, b) for a, b in zip(reference, found["candidates"]) if a or b]
        stats[spec] = {k: v for k, v in found.items() if k not in ("candidates", "key")}
        stats[spec]["overlap"] = sum(overlap(a, b) for a, b in pairs) / max(1, len(pairs))
    return stats


def train_student(cache_dir: Path, run_dir: Path, dev_tsv: Path, steps: int, seed: int,
                  teacher_report: bool) -> dict[str, Any]:
    """The Tang BiLSTM cut to exactly `steps` steps (dev scored once, at the end), or its stored
    result when this recipe already finished on this cache."""
    config = recipe("tang_bilstm", {"max_steps": steps, "eval_every": steps, "checkpoint_every": steps, "seed": seed})

    def fit() -> dict[str, Any]:
        result = train(config, cache_dir, run_dir, dev_tsv, Columns(**SENTENCE_LABEL), teacher_report=teacher_report,
                       overwrite=True)
        return {"seconds": result.seconds, "steps": result.steps, "accuracy": result.report["student"]["accuracy"],
                "teacher_accuracy": result.report.get("teacher", {}).get("accuracy")}

    return reuse_or_run(run_dir / "result.json", {"cache": str(cache_dir), "recipe": config.resolved()}, fit,
                        clear=run_dir)


def train_students(caches: dict[str, tuple[Path, dict]], out: Path, dev_tsv: Path, plan: Plan) -> dict[str, list[dict]]:
    """Every (data, seed) student; the first run also scores the teacher on the dev rows."""
    runs: dict[str, list[dict]] = {}
    for data, (cache_dir, _) in caches.items():
        for seed in plan.seeds:
            log.info("student: data %s, seed %d", data, seed)
            run_dir = out / "students" / f"{data.replace(':', '-')}-seed{seed}"
            runs.setdefault(data, []).append(train_student(cache_dir, run_dir, dev_tsv, plan.steps, seed, not runs))
    return runs


def accuracy_cell(runs: list[dict]) -> tuple[str, str]:
    accs = [100 * r["accuracy"] for r in runs]
    mean, std = mean_std(accs)
    return f"{mean:.2f}" + (f" ± {std:.2f}" if std is not None else ""), ", ".join(f"{a:.2f}" for a in accs)


def table(caches: dict[str, tuple[Path, dict]], stats: dict[str, dict], runs: dict[str, list[dict]], plan: Plan) -> str:
    seeds = ", ".join(map(str, plan.seeds))
    lines = ["| masks_per_query[:dtype] | top-15 overlap vs 1 | words queried | sequences encoded (forward calls) | "
             f"candidate time | dev acc mean ± std | per seed ({seeds}) | labelled rows |",
             "|---|---:|---:|---:|---:|---:|---|---:|"]
    for data in [str(m) for m in plan.modes] + [BASELINE]:
        mean, each = accuracy_cell(runs[data])
        rows = caches[data][1]["rows"]
        if data == BASELINE:
            lines.append(f"| no augmentation (baseline) | – | – | – | – | {mean} | {each} | {rows:,} |")
            continue
        s = stats[data]
        lines.append(f"| {data} | {s['overlap']:.3f} | {s['queries']:,} | {s['sequences']:,} "
                     f"({s['forward_calls']:,}) | {s['seconds']:.1f} s | {mean} | {each} | {rows:,} |")
    return "\n".join(lines)


def parse_args() -> tuple[argparse.Namespace, Plan]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SST2_TRAIN)
    parser.add_argument("--out", type=Path, default=Path("out/mlm-modes"))
    parser.add_argument("--proxy", type=Path, default=REPO / "out" / "proxy-mlm",
                        help="python -m bench.proxy_mlm --out folder (built there, ~11 min, when absent)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the wiring in about 3 minutes")
    parser.add_argument("--sources", type=int)
    parser.add_argument("--teacher-rows", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--seeds", help="comma-separated, default 0,1,2 (--quick: 0)")
    parser.add_argument("--modes", help="comma-separated masks_per_query[:dtype] specs, default 1,3,all,all:auto")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "int8", "auto"), help="mlm dtype, default float32")
    args = parser.parse_args()
    given = {"sources": args.sources, "teacher_rows": args.teacher_rows, "steps": args.steps, "dtype": args.dtype,
             "seeds": [int(s) for s in args.seeds.split(",")] if args.seeds else None,
             "modes": [m for m in args.modes.split(",") if split_spec(m, "float32")] if args.modes else None}
    plan = dataclasses.replace(QUICK if args.quick else Plan(), **{k: v for k, v in given.items() if v is not None})
    return args, plan


def main() -> None:
    args, plan = parse_args()
    logging.basicConfig(level=logging.WARNING)
    log.setLevel(logging.INFO)
    out = args.out
    train_tsv, dev_tsv, dropped = tail_split(args.data, out / "data", plan.dev_rows,
                                             max(plan.teacher_rows, plan.sources))
    log.info("%s: %d training rows overlapping the dev rows dropped", args.data, dropped)
    proxy = build_proxy_mlm(args.proxy, log=log.info)
    # the MiniLM-L6 teacher, fine-tuned 1 epoch on the first `teacher_rows` rows (cached by finetune)
    record = finetune_teacher(head(train_tsv, plan.teacher_rows), out / "teacher", {"epochs": 1.0})
    sources = head(train_tsv, plan.sources)
    caches = build_caches(sources, out, out / "teacher", proxy, plan)
    log.info("candidates per mode (in this process, %s)", plan.dtype)
    stats = candidate_stats(proxy, sources, out, plan)
    runs = train_students(caches, out, dev_tsv, plan)
    teacher_acc = next(r["teacher_accuracy"] for rs in runs.values() for r in rs
                       if r.get("teacher_accuracy") is not None)
    hardware, text = machine_line(), table(caches, stats, runs, plan)
    summary = (f"{text}\n\n{plan.sources:,} source sentences (the first SST-2 training rows), mlm rule only, "
               f"N = 20, p_t = 0.4, seed 0, masked LM {proxy} (proxy, see bench/proxy_mlm.py), dtype {plan.dtype} "
               f"unless the row names one; BiLSTM + logit MSE + CE, {plan.steps} steps of batch 50 for every row; dev: "
               f"the last {plan.dev_rows:,} rows of train.tsv ({dropped:,} overlapping training rows dropped); "
               f"teacher MiniLM-L6 fine-tuned on {plan.teacher_rows:,} rows: dev acc {100 * teacher_acc:.2f}; "
               f"{hardware}")
    print(summary)
    (out / "results.md").write_text(summary + "\n")
    (out / "results.json").write_text(json.dumps({
        "plan": plan.__dict__, "dropped_overlapping_rows": dropped, "teacher": {"accuracy": teacher_acc, **record},
        "candidates": stats, "students": runs, "rows": {k: v[1]["rows"] for k, v in caches.items()},
        "proxy_mlm": str(proxy), "hardware": hardware}, indent=2, default=str))


if __name__ == "__main__":
    run_timed(main)
