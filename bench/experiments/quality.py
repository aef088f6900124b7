"""SST-2 distillation results table: the whole pipeline on real data, with fixed seeds
(docs/results.md, "Results on SST-2").

    python -m bench.experiments.quality                  # about 37 min on 2 CPU cores (+ the general row)
    python -m bench.experiments.quality --quick          # smoke run on 2 000 sentences, a few minutes
    python -m bench.experiments.quality --only tinybert  # the teacher, the TinyBERT cache and the TinyBERT rows

Steps, each cached (a rerun resumes): hold out the last `dev_rows` rows of train.tsv
(bench/makers/sst2_split.py); fine-tune the MiniLM-L6 teacher on the rest; three caches (the
training set with [CLS] per layer, + Tang augmentation, and a TinyBERT cache of the first
`tiny_sources` sentences); general distillation of the TinyBERT student on WikiText-2
(pipelines/configs/pipeline/general/tinybert.yaml, tinybert_general.yaml); then every row of
`students()`, a recipe of pipelines/configs/students/ with the sizes below, scored on the dev rows.
Prints one markdown table (also `<out>/results.md`, `results.json`). `--mlm bert-base-uncased
--glove glove.840B.300d.txt` add the TinyBERT rules to the TinyBERT cache for online users.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    ORIGINALS_ONLY, SENTENCE_LABEL, SST2_TRAIN, augmentation, directory_bytes, finetune_teacher, labelled_cache,
    machine_line, mean_std, minilm, recipe, reuse_or_run, run_timed,
)
from bench.experiments.general_student import general_student
from bench.makers.sst2_split import head, tail_split
from distill.common.columns import Columns
from distill.common.ray_runtime import ray_session
from distill.train.loop import train

COLUMNS = Columns(**SENTENCE_LABEL)
log = logging.getLogger("bench")


@dataclass
class Sizes:
    """What fits the hardware: the defaults take about 37 minutes on 2 CPU cores."""

    dev_rows: int = 2000
    train_rows: int | None = None  # None: all of train.tsv but the dev rows
    teacher_epochs: float = 1.0
    aug_n: int = 2  # Tang samples per sentence: 65k sentences x (1 + 2) ~ 190k labelled rows
    tiny_sources: int = 8000  # sentences augmented for the TinyBERT cache (hidden + attention is ~70 kB/row)
    lstm_epochs: float = 3.0  # on the training set; the augmented set gets the same number of steps
    bert_epochs: float = 0.5  # ~1 000 steps: the copied layers start close to the teacher
    tiny_epochs: tuple[float, float] = (1.0, 1.0)  # intermediate, prediction
    general_documents: int | None = None  # WikiText-2 paragraphs for general distillation (None: all)
    general_epochs: float = 3.0  # TinyBERT's general distillation runs 3 epochs


QUICK = Sizes(dev_rows=500, train_rows=2000, teacher_epochs=2.0, aug_n=2, tiny_sources=600, lstm_epochs=2.0,
              bert_epochs=1.0, general_documents=200, general_epochs=0.5)
BERT3 = "3-layer BERT from teacher layers"


def row(name: str, student: str, data: str, losses: str, base: str, values: dict[str, Any],
        without: tuple[str, ...] = (), stages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One table row: its student recipe is `base`.yaml with `values` (see bench.common.recipe)."""
    return {"name": name, "student": student, "data": data, "losses": losses,
            "recipe": {"name": base, "values": {"seed": 0, "checkpoint_every": 1000, **values}, "without": without,
                       "stages": stages}}


def bert3(sizes: Sizes, **values: Any) -> dict[str, Any]:
    """BERT-PKD's recipe on 3 copied teacher layers and KD at T = 5."""
    return {"student.num_layers": 3, "epochs": sizes.bert_epochs, "losses.kd.temperature": 5.0, **values}


def students(sizes: Sizes, aug_ratio: float) -> list[dict[str, Any]]:
    """The table's rows: name, data (cache), losses text and the training recipe."""
    tang, ce_only = "tang_bilstm", {"losses": {"ce": {}}}
    return [
        row("bilstm-ce", "BiLSTM", "train", "CE only (no teacher)", tang, {**ce_only, "epochs": sizes.lstm_epochs}),
        row("bilstm-tang", "BiLSTM", "train", "logit MSE + CE (Tang)", tang, {"epochs": sizes.lstm_epochs}),
        row("bilstm-tang-aug", "BiLSTM", "train + Tang augmentation", "logit MSE + CE", tang,
            {"epochs": sizes.lstm_epochs / aug_ratio}),
        row("bert3-ce", BERT3, "train", "CE only (no teacher)", "pkd_skip", bert3(sizes, **ce_only)),
        row("bert3-kd", BERT3, "train", "KD (T = 5) + CE", "pkd_skip", bert3(sizes), ("losses.pkd",)),
        row("bert3-pkd", "3-layer BERT", "train", "KD + CE + PKD-skip", "pkd_skip", bert3(sizes)),
        tinybert_task(sizes, "tinybert4", "narrow BERT 4x312 (TinyBERT-style, random init)"),
    ]


def investigation(sizes: Sizes, aug_ratio: float) -> list[dict[str, Any]]:
    """`--investigate`: why KD barely moves the 3-layer BERT (it starts from the teacher's own layers)."""
    return [
        row("bert3-kd-aug", BERT3, "train + Tang augmentation", "KD (T = 5) + CE, same steps", "pkd_skip",
            bert3(sizes, epochs=sizes.bert_epochs / aug_ratio), ("losses.pkd",)),
        row("bert3-kd-t1", BERT3, "train", "KD (T = 1, weight 0.9) + CE", "pkd_skip",
            bert3(sizes, **{"losses.ce.weight": 0.1, "losses.kd.weight": 0.9, "losses.kd.temperature": 1.0}),
            ("losses.pkd",)),
    ]


def tinybert_task(sizes: Sizes, name: str, student: str, init: Path | None = None) -> dict[str, Any]:
    """`tinybert4.yaml` (intermediate, then prediction) on the tiny cache: one budget for both inits."""
    stages = [{"epochs": epochs, "learning_rate": 1e-4} for epochs in sizes.tiny_epochs]
    return row(name, student, "tiny", "intermediate (emb/hidden/attn) then prediction", "tinybert4",
               {"student.init": str(init)} if init else {}, stages=stages)


def build_caches(args: argparse.Namespace, sizes: Sizes, train_tsv: Path, teacher: Path) -> dict[str, tuple]:
    """augment → label: the training set as it is, with Tang augmentation, and the TinyBERT cache."""
    out, tang = Path(args.out), {"columns": SENTENCE_LABEL, "tang.n_iter": sizes.aug_n}
    tiny = {**tang, **({"rules.mlm.model": args.mlm} if args.mlm else {}),
            **({"rules.glove.path": args.glove} if args.glove else {})}
    plans = {"train": (train_tsv, "cache-train", {"columns": SENTENCE_LABEL, **ORIGINALS_ONLY}, {"features": ["cls"]}),
             "train + Tang augmentation": (train_tsv, "cache-aug", tang, {"features": []}),
             "tiny": (head(train_tsv, sizes.tiny_sources), "cache-tiny", tiny,
                      {"features": ["hidden", "attention", "embedding"], "quantize_hidden": True})}
    if args.only == "tinybert":
        del plans["train"], plans["train + Tang augmentation"]
    caches = {}
    for name, (source, folder, values, label) in plans.items():
        cache = labelled_cache(source, out / folder, augmentation("tang", values), {"teacher": str(teacher), **label})
        caches[name] = (cache.cache_dir, cache.totals)
    return caches


def with_seeds(specs: list[dict[str, Any]], seeds: int) -> list[dict[str, Any]]:
    """The TinyBERT rows once per training seed (seed 0 keeps its name, so a finished run is reused)."""
    out = []
    for spec in specs:
        for seed in range(seeds if spec["name"].startswith("tinybert4") else 1):
            name = spec["name"] if seed == 0 else f"{spec['name']}-seed{seed}"
            plan = spec["recipe"]
            out.append({**spec, "name": name, "recipe": {**plan, "values": {**plan["values"], "seed": seed}}})
    return out


def train_row(spec: dict[str, Any], cache_dir: Path, out: Path, dev_tsv: Path, rerun: bool,
              teacher_report: bool) -> dict[str, Any]:
    """One student, trained and scored on the dev set, or its record when this recipe finished on this cache."""
    config = recipe(**spec["recipe"])
    run_dir = out / "students" / spec["name"]

    def fit() -> dict[str, Any]:
        log.info("training %s on %s", spec["name"], spec["data"])
        # overwrite: a killed run of the same recipe and cache resumes; one of another recipe or cache starts over
        result = train(config, cache_dir, run_dir, dev_tsv, COLUMNS, teacher_report=teacher_report, overwrite=True)
        return {"seconds": result.seconds, "steps": result.steps, "report": result.report}

    return reuse_or_run(run_dir / "result.json", {"cache": str(cache_dir), "recipe": config.resolved()}, fit,
                        clear=run_dir, fresh=rerun)


def merge_seeds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (student, data, losses): accuracy as the mean over its seeds, with their spread."""
    merged: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        key = (r["student"], r["data"], r["losses"])
        if key in merged:
            merged[key]["accuracies"].append(r["accuracy"])
            merged[key]["seconds_all"].append(r["seconds"])
        else:
            merged[key] = {**r, "accuracies": [r["accuracy"]], "seconds_all": [r["seconds"]]}
    for r in merged.values():
        r["accuracy"], r["std"] = mean_std(r["accuracies"])
        r["seconds"] = statistics.mean(r["seconds_all"])
    return list(merged.values())


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| student | data | losses | dev acc | params | train time | teacher-cache bytes |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        cache = f"{r['cache_bytes'] / 1e6:,.1f} MB ({r['cache_rows']:,} rows)" if r.get("cache_bytes") else "–"
        accuracy = f"{100 * r['accuracy']:.2f}" + (f" ± {100 * r['std']:.2f} ({len(r['accuracies'])} seeds)"
                                                     if r.get("std") is not None else "")
        lines.append(f"| {r['student']} | {r['data']} | {r['losses']} | {accuracy} | "
                     f"{r['parameters'] / 1e6:.1f} M | {r['seconds'] / 60:.1f} min | {cache} |")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SST2_TRAIN))
    parser.add_argument("--out", default="out/sst2")
    parser.add_argument("--base-model", help="teacher encoder (default: the offline MiniLM-L6)")
    parser.add_argument("--mlm", help="masked LM for TinyBERT substitution, e.g. bert-base-uncased (online users)")
    parser.add_argument("--glove", help="GloVe text file for TinyBERT substitution of multi-wordpiece words")
    parser.add_argument("--quick", action="store_true", help="2 000 sentences: checks the wiring in a few minutes")
    parser.add_argument("--investigate", action="store_true", help="also the extra 3-layer BERT runs of the README")
    parser.add_argument("--rerun", nargs="*", help="students to train again although finished, e.g. bert3-kd")
    parser.add_argument("--only", choices=["tinybert"],
                        help="tinybert: only the teacher, the TinyBERT cache and its rows")
    parser.add_argument("--tiny-seeds", type=int, default=1,
                        help="training seeds of the two TinyBERT task rows (mean ± std; one general student)")
    return parser.parse_args()


def result_rows(specs: list[dict[str, Any]], caches: dict[str, tuple], args: argparse.Namespace, sizes: Sizes,
                dev_tsv: Path, teacher_seconds: float) -> list[dict[str, Any]]:
    """Train (or read back) every row; the teacher's row comes from the first run's report."""
    results = []
    for spec in with_seeds(specs, args.tiny_seeds):
        cache_dir, totals = caches[spec["data"]]
        stored = train_row(spec, cache_dir, Path(args.out), dev_tsv, spec["name"] in (args.rerun or []), not results)
        report = stored["report"]
        if not results:
            results.append({"student": "teacher MiniLM-L6", "data": "train", "losses": "CE (fine-tuned)",
                            "accuracy": report["teacher"]["accuracy"], "parameters": report["teacher"]["parameters"],
                            "seconds": teacher_seconds})
        data = f"train (first {sizes.tiny_sources}) + Tang augmentation" if spec["data"] == "tiny" else spec["data"]
        uses_teacher = "no teacher" not in spec["losses"]
        results.append({"student": spec["student"], "data": data, "losses": spec["losses"],
                        "accuracy": report["student"]["accuracy"], "parameters": report["student"]["parameters"],
                        "seconds": stored["seconds"], "cache_bytes": directory_bytes(cache_dir) if uses_teacher else 0,
                        "cache_rows": totals["rows"]})
    return merge_seeds(results)


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    log.setLevel(logging.INFO)
    sizes = QUICK if args.quick else Sizes()
    out = Path(args.out)
    train_tsv, dev_tsv, dropped = tail_split(Path(args.data), out / "data", sizes.dev_rows, sizes.train_rows)
    log.info("%s: %d training rows overlapping the dev rows dropped", args.data, dropped)
    base = args.base_model or minilm()
    log.info("fine-tuning the teacher on %s", train_tsv)
    record = finetune_teacher(train_tsv, out / "teacher", {"base_model": str(base), "epochs": sizes.teacher_epochs})
    with ray_session(None):
        log.info("teacher caches")
        caches = build_caches(args, sizes, train_tsv, out / "teacher")
        log.info("general distillation of the TinyBERT-style student on WikiText-2")
        general_dir, general = general_student(out, str(base), sizes.general_documents, sizes.general_epochs)
    rows = {name: totals["rows"] for name, (_, totals) in caches.items()}
    aug_ratio = rows["train + Tang augmentation"] / rows["train"] if "train" in rows else 1.0
    specs = students(sizes, aug_ratio) + (investigation(sizes, aug_ratio) if args.investigate else [])
    specs.append(tinybert_task(sizes, "tinybert4-general", "narrow BERT 4x312 (TinyBERT-style, from general "
                               "distillation on WikiText-2)", general_dir))
    if args.only == "tinybert":
        specs = [s for s in specs if s["name"].startswith("tinybert4")]
    results = result_rows(specs, caches, args, sizes, dev_tsv, record["seconds"])
    hardware, g = machine_line(), general
    summary = (f"{table(results)}\n\ntrain {record['train_rows']} sentences ({dropped} rows overlapping dev dropped), "
               f"dev {sizes.dev_rows} (held out: the last rows); labelled rows: "
               + ", ".join(f"{k} {v:,}" for k, v in rows.items()) + f"; {hardware}"
               f"\n\ngeneral distillation: {g['documents']:,} WikiText-2 paragraphs -> {g['sequences']:,} "
               f"128-wordpiece sequences ({g['wordpieces']:,} wordpieces), cache {g['cache_bytes'] / 1e9:.2f} GB "
               f"({g['bytes_per_example'] / 1e3:.0f} kB/sequence, attention recomputed), labelled in "
               f"{g['label_seconds'] / 60:.1f} min, student trained {g['steps']} steps in "
               f"{g['train_seconds'] / 60:.1f} min (not in the row's train time)")
    print(summary)
    (out / "results.md").write_text(summary + "\n")
    (out / "results.json").write_text(json.dumps({"sizes": sizes.__dict__, "dropped_overlapping_rows": dropped,
                                                  "rows": results, "hardware": hardware, "general": general}, indent=2))


if __name__ == "__main__":
    run_timed(main)
