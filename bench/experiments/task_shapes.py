"""Teacher vs student on real text for the task shapes beyond binary classification
(docs/results.md, "Task shapes on real text").

    python -m bench.experiments.task_shapes                    # every shape, about 15 min on 2 CPU cores
    python -m bench.experiments.task_shapes --only regression  # one shape: regression | pairs | ner

Offline stand-ins for STS-B, MNLI and CoNLL-2003: regression (SST-2 labels as float scores;
Pearson, Spearman), pairs (consecutive SST-2 sentences labelled both_positive, both_negative or
mixed; accuracy, macro F1), ner (WikiText-2 sentences with spaCy's silver BIO tags,
bench/makers/silver_ner.py; entity F1). Each shape: fine-tune the MiniLM-L6 teacher, augment
(tang.yaml's rules; token tasks mask, pos, mention) and label, train the shape's BiLSTM recipe of
pipelines/configs/students/ from the cache alone, and score both on the same held-out rows
(`distill.evaluate`). Cached by fingerprints: a rerun resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

from bench.common import (
    REPO, SST2_TRAIN, WIKITEXT, augmentation, finetune_teacher, labelled_cache, machine_line, minilm, recipe,
    write_if_changed,
)
from bench.makers import silver_ner
from distill.common.columns import Columns
from distill.common.ray_runtime import ray_session
from distill.evaluate import evaluate_models
from distill.train.loop import train

PAIR_NAMES = {(1, 1): "both_positive", (0, 0): "both_negative"}


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    return write_if_changed(path, "".join(json.dumps(r) + "\n" for r in rows))  # unchanged: later steps stay cached


def _sst2(train_rows: int, dev_rows: int) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    lines = SST2_TRAIN.read_text(encoding="utf-8").splitlines()[1:]
    rows = [(s, int(lab)) for s, lab in (line.rsplit("\t", 1) for line in lines)]
    dev = rows[-dev_rows:]
    dev_texts = {s for s, _ in dev}
    train_part = [r for r in rows[:-dev_rows] if r[0] not in dev_texts][:train_rows]
    return train_part, dev


def regression_data(out: Path, args) -> tuple[Path, Path, Columns]:
    train_part, dev = _sst2(args.train_rows, args.dev_rows)
    rows = lambda part: [{"sentence": s, "score": float(lab)} for s, lab in part]  # noqa: E731
    return (_jsonl(out / "train.jsonl", rows(train_part)), _jsonl(out / "dev.jsonl", rows(dev)),
            Columns(text_a="sentence", label="score"))


def pair_data(out: Path, args) -> tuple[Path, Path, Columns]:
    train_part, dev = _sst2(2 * args.train_rows, 2 * args.dev_rows)
    pairs = lambda part: [{"sentence1": a[0], "sentence2": b[0], "label": PAIR_NAMES.get((a[1], b[1]), "mixed")}  # noqa: E731
                          for a, b in zip(part[0::2], part[1::2])]
    return (_jsonl(out / "train.jsonl", pairs(train_part)), _jsonl(out / "dev.jsonl", pairs(dev)),
            Columns(text_a="sentence1", text_b="sentence2"))


def ner_data(out: Path, args) -> tuple[Path, Path, Columns]:
    """Silver-tagged WikiText-2: train sentences from the validation split, dev from the test split."""
    files = {}
    for split, name, rows in (("valid", "train", args.train_rows), ("test", "dev", args.dev_rows)):
        files[name] = out / f"{name}-{rows}.jsonl"
        if not files[name].exists() and silver_ner.main(["--input", str(WIKITEXT / f"{split}.txt"),
                                                         "--output", str(files[name]), "--rows", str(rows)]):
            raise SystemExit(f"silver_ner could not write {files[name]}")
    return files["train"], files["dev"], Columns(tokens="tokens", tags="tags")


# shape -> data, student recipe, teacher fine-tuning options, augmentation rules, epochs (teacher, student)
# as multiples of --teacher-epochs / --student-epochs (tagging takes longer to learn from 2 500
# sentences), default (train, dev) examples: WikiText-2's validation split holds about 2 600
# sentences without <unk>.
SHAPES = {
    "regression": (regression_data, "regression_bilstm.yaml", {"task": "regression"}, ["mask", "pos", "ngram"],
                   (1, 1), (6000, 1000)),
    "pairs": (pair_data, "tang_bilstm.yaml", {}, ["mask", "pos", "ngram"], (1, 1), (6000, 1000)),
    "ner": (ner_data, "ner_bilstm.yaml", {"task": "token_classification"}, ["mask", "pos", "mention"], (5, 3),
            (2500, 500)),
}


def run_shape(name: str, root: Path, args) -> dict[str, Any]:
    make_data, recipe_name, finetune_extra, rules, (teacher_scale, student_scale), sizes = SHAPES[name]
    out = root / name
    started = time.perf_counter()
    args = argparse.Namespace(**{**vars(args), "train_rows": args.train_rows or sizes[0],
                                 "dev_rows": args.dev_rows or sizes[1]})
    train_file, dev_file, columns = make_data(out / "data", args)
    keys = ("text_a", "text_b", "label", "tokens", "tags")
    column_config = {k: getattr(columns, k) for k in keys if getattr(columns, k)}
    teacher = out / "teacher"
    epochs = {"teacher": args.teacher_epochs * teacher_scale, "student": args.student_epochs * student_scale}
    record = finetune_teacher(train_file, teacher, {"base_model": args.base_model, "columns": column_config,
                                                    "epochs": epochs["teacher"], "learning_rate": 1e-4,
                                                    **finetune_extra})
    config = augmentation("tang", {"columns": column_config, "rules": rules, "tang.n_iter": args.aug_n})
    cache = labelled_cache(train_file, out, config, {"teacher": str(teacher)})
    student = recipe(recipe_name.removesuffix(".yaml"), {"epochs": epochs["student"]})
    # overwrite: a run directory left by other settings is replaced (the same settings resume)
    trained = train(student, cache.cache_dir, out / "student", teacher_report=False, overwrite=True)
    scores = evaluate_models([str(trained.student_dir), str(teacher)], dev_file, columns)
    models = scores["models"]
    return {"shape": name, "task": scores["task"], "metrics": scores["metrics"], "recipe": recipe_name,
            "teacher_epochs": epochs["teacher"], "student_epochs": epochs["student"],
            "train_rows": record["train_rows"], "cache_rows": cache.totals["rows"],
            "dev_rows": scores["data"]["rows_scored"], "student": models[str(trained.student_dir)],
            "teacher": models[str(teacher)], "minutes": round((time.perf_counter() - started) / 60, 1)}


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| shape | data | metric | teacher | student (BiLSTM) | student / teacher | train rows → cache rows | "
             "dev rows | params teacher / student |", "|---|---|---|---:|---:|---:|---|---:|---|"]
    for r in results:
        for metric in r["metrics"]:
            t, s = r["teacher"][metric], r["student"][metric]
            ratio = f"{100 * s / t:.1f} %" if t else "–"
            lines.append(f"| {r['shape']} | {DATA_NAMES[r['shape']]} | {metric} | {t:.4f} | {s:.4f} | {ratio} | "
                         f"{r['train_rows']:,} → {r['cache_rows']:,} | {r['dev_rows']:,} | "
                         f"{r['teacher']['parameters'] / 1e6:.1f} M / {r['student']['parameters'] / 1e6:.1f} M |")
    return "\n".join(lines)


DATA_NAMES = {"regression": "SST-2, label as score", "pairs": "SST-2 sentence pairs, 3 classes",
              "ner": "WikiText-2, spaCy silver NER"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(SHAPES), action="append", help="run these shapes (default: all)")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "task-shapes")
    parser.add_argument("--base-model", help="teacher encoder (default: the bundled MiniLM-L6)")
    parser.add_argument("--train-rows", type=int, help="examples (pairs, sentences) to train on (default: per shape)")
    parser.add_argument("--dev-rows", type=int, help="held-out examples scored (default: per shape)")
    parser.add_argument("--teacher-epochs", type=float, default=1.0)
    parser.add_argument("--aug-n", type=int, default=2, help="Tang samples per training example")
    parser.add_argument("--student-epochs", type=float, default=3.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.base_model = args.base_model or minilm()
    results_path = args.out / "results.json"
    results = {r["shape"]: r for r in json.loads(results_path.read_text())} if results_path.exists() else {}
    with ray_session(None):
        for name in args.only or list(SHAPES):
            results[name] = run_shape(name, args.out, args)
            results_path.write_text(json.dumps(list(results.values()), indent=2))
    text = table([results[n] for n in SHAPES if n in results])
    command = "python -m bench.experiments.task_shapes"
    (args.out / "results.md").write_text(text + f"\n\n({machine_line()}; command: {command})\n")
    print(text)


if __name__ == "__main__":
    main()
