"""SST-2 students under one protocol: training, validation and test sentences, every choice made on
validation, three seeds per row (docs/results.md, "SST-2 students: one protocol").

    nohup python -m bench.experiments.sst2_scale > out/sst2-scale.log 2>&1 &   # every step cached: rerun to resume
    python -m bench.experiments.sst2_scale --report            # the table from the ledger; trains nothing
    python -m bench.experiments.sst2_scale --budget-minutes 150   # only the runs that fit (the ledger's times)
    python -m bench.experiments.sst2_scale --quick             # wiring check on 3 000 training rows
    python -m bench.experiments.sst2_scale --only 'bilstm-kd,bert3-*' --seeds 2   # rows by name (shell patterns)

Protocol: the last 1 000 whole sentences of train.tsv are the test set, the 1 000 before them the validation
set, and every training row inside either leaves training (bench/makers/sst2_split.py); 2 000 sub-phrases
of the test sentences are a second test set. Validation chooses every epoch count: each run is scored on it
after every epoch, keeps its best epoch, and stops after `patience` epochs without a new best. The test
sets are scored once per finished run and choose nothing.

Steps, each cached: the MiniLM-L6 teacher (best of its epochs on validation); caches over the training
rows (logits and every layer's [CLS], for PKD) and over the training rows plus 20 Tang samples of every
whole training sentence (`tang.skip_subphrases`: none for the phrases inside one), labelled three ways:
logits only, TinyBERT's targets (embedding, hidden states, attention recomputed; int8) and MiniLM's (the
last layer's input); the TinyBERT general student (bench/experiments/general_student.py); then `rows()`,
seed 0 of every row first, then seeds 1 and 2. A killed run resumes from its checkpoint.

Finished runs, the teacher's record and the caches' sizes go to a ledger in the repository
(docs/results/sst2-scale/, bench/experiments/ledger.py): a rerun on a fresh machine rebuilds the teacher and the
caches its remaining rows need, trains only the runs the ledger lacks, and refuses a teacher whose weights differ
from the ledger's. `--report` reads the ledger alone.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import math
import statistics
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    ORIGINALS_ONLY, SENTENCE_LABEL, SST2_TRAIN, augmentation, digest, directory_bytes, finetune_teacher,
    labelled_cache, machine_line, mean_std, minilm, recipe, reuse_or_run, run_timed,
)
from bench.experiments.general_student import general_dir, general_student
from bench.experiments.ledger import LEDGERS, Ledger
from bench.makers.sst2_split import write_split
from distill.common.columns import Columns
from distill.common.ray_runtime import ray_session
from distill.evaluate import evaluate_models
from distill.hashing import model_fingerprint
from distill.train.loop import train

log = logging.getLogger("bench")
ROWS_VERSION = 1  # bump when a row's recipe changes: the ledger's runs of the old recipes then no longer count
COLUMNS = Columns(**SENTENCE_LABEL)
TESTS = ("sentences", "phrases")
# What a rebuilt teacher must reproduce to count as the ledger's when its bytes differ (another CPU's kernels)
TEACHER_BEHAVIOUR = ("epochs", "best_epoch", "validation", "scores")
# What a rebuilt general student must share to count as another draw of the ledger's (it has no behaviour figures)
GENERAL_RECIPE = ("facts.documents", "facts.sequences", "facts.wordpieces", "facts.steps")
GENERAL_ROW = "tinybert4-general"  # the row that starts from the general student


@dataclass
class Sizes:
    test: int = 1000  # held-out whole sentences, scored once per finished run
    validation: int = 1000  # held-out whole sentences that choose epochs
    phrases: int = 2000  # sub-phrases of the test sentences
    train_rows: int | None = None  # None: every training row left
    teacher_epochs: float = 3.0
    aug_n: int = 20  # Tang samples per whole training sentence (Tang et al.: 20)
    lstm_patience: int = 3  # epochs without a new validation best before a BiLSTM run stops
    lstm_epochs: float = 40.0  # a bound early stopping reaches first
    lstm_batch: int = 50
    patience: int = 2  # the same, for the BERT students (a few epochs from a good start)
    bert_epochs: float = 4.0  # at most (BERT-PKD: 4): at least 3 are available to every BERT row
    intermediate_epochs: float = 1.0  # TinyBERT / MiniLM first stage (no validation score before prediction)
    prediction_epochs: float = 3.0  # at most (TinyBERT: 3); early stopping on validation
    general_documents: int | None = None  # WikiText-2 paragraphs (None: all of valid + test)
    general_epochs: float = 3.0
    seeds: int = 3


QUICK = Sizes(test=200, validation=200, phrases=300, train_rows=3000, teacher_epochs=1.0, aug_n=4, lstm_patience=1,
              patience=1,
              lstm_epochs=4.0, bert_epochs=1.0, intermediate_epochs=0.5, prediction_epochs=1.0, general_documents=200,
              general_epochs=0.2)


def protocol(sizes: Sizes) -> str:
    """What makes two runs of one row comparable: the split, the budgets, early stopping, the rows' recipes."""
    return digest(ROWS_VERSION, {k: v for k, v in asdict(sizes).items() if k != "seeds"})


@dataclass
class Row:
    """One table row: `base`.yaml (pipelines/configs/students/) with `values` and per-stage `stages` on top."""

    name: str
    family: str
    init: str
    data: str  # the cache it trains on (`Experiment.caches`)
    losses: str
    base: str
    values: dict[str, Any] = field(default_factory=dict)
    without: tuple[str, ...] = ()
    stages: list[dict[str, Any]] | None = None
    uses_teacher: bool = True

    @property
    def needs_general(self) -> bool:
        """Starts from TinyBERT's general student, which is built (and bound in the ledger) before its first run."""
        return self.name == GENERAL_ROW

    def config(self, seed: int):
        return recipe(self.base, {**self.values, "seed": seed}, self.without, self.stages)


def chosen_on_validation(epochs: float, patience: int) -> dict[str, Any]:
    """Scored on validation every epoch, the best epoch kept, stopped after `patience` epochs without a new best."""
    return {"epochs": epochs, "keep_best": True, "early_stopping_patience": patience, "checkpoint_every": 1000}


def bilstm_rows(sizes: Sizes) -> list[Row]:
    values = {**chosen_on_validation(sizes.lstm_epochs, sizes.lstm_patience), "batch_size": sizes.lstm_batch}
    return [Row("bilstm-ce", "BiLSTM", "random", "train", "CE only (no teacher)", "tang_bilstm",
                {**values, "losses": {"ce": {}}}, uses_teacher=False),
            Row("bilstm-kd", "BiLSTM", "random", "train", "logit MSE + CE (Tang)", "tang_bilstm", values),
            Row("bilstm-kd-aug", "BiLSTM", "random", "aug", "logit MSE + CE (Tang)", "tang_bilstm", values)]


def bert3_rows(sizes: Sizes, pretrained: Path) -> list[Row]:
    """BERT-PKD's settings (pkd_skip.yaml: α = 0.7, T = 10, β = 500), 3 layers from the pre-trained encoder
    (BERT-PKD's init) or from the fine-tuned teacher."""
    inits = {"pretrained": {"student.init": str(pretrained)}, "teacher": {"student.layers": "first"}}
    rows = []
    for init, student in inits.items():
        values = {**chosen_on_validation(sizes.bert_epochs, sizes.patience), "student.num_layers": 3, **student}
        rows += [Row(f"bert3-{init}-ce", "BERT-3", init, "train", "CE only (no teacher)", "pkd_skip",
                     {**values, "losses": {"ce": {}}}, uses_teacher=False),
                 Row(f"bert3-{init}-kd", "BERT-3", init, "train", "KD (T = 10, α = 0.7) + CE", "pkd_skip", values,
                     ("losses.pkd",)),
                 Row(f"bert3-{init}-pkd", "BERT-3", init, "train", "KD + CE + PKD-skip (β = 500)", "pkd_skip", values),
                 Row(f"bert3-{init}-kd-aug", "BERT-3", init, "aug", "KD (T = 10, α = 0.7) + CE", "pkd_skip", values,
                     ("losses.pkd",))]
    return rows


def two_stage_rows(sizes: Sizes, general: Path | None) -> list[Row]:
    """TinyBERT-4 (random or general init) and the MiniLM-distilled student: a first stage of intermediate
    targets, then the prediction stage, whose epochs validation chooses."""
    stages = [{"epochs": sizes.intermediate_epochs}, {"epochs": sizes.prediction_epochs}]
    best = chosen_on_validation(sizes.prediction_epochs, sizes.patience)  # applies to the last stage
    tiny = "intermediate (embedding, hidden via W_h, attention), then soft CE"
    rows = [Row("tinybert4-random", "TinyBERT-4 (4×312)", "random", "aug-tinybert", tiny, "tinybert4", best,
                stages=stages)]
    if general is not None:
        rows.append(Row(GENERAL_ROW, "TinyBERT-4 (4×312)", "general (WikiText-2)", "aug-tinybert", tiny,
                        "tinybert4", {**best, "student.init": str(general)}, stages=stages))
    rows.append(Row("minilm4-random", "MiniLM-distilled (4×312)", "random", "aug-minilm",
                    "last-layer attention + value relations (KL), then soft CE", "minilm", best, stages=stages))
    return rows


def general_line(record: dict[str, Any] | None) -> str:
    if record is None:
        return "General student: not built yet."
    facts, draws = record["facts"], [d["model_files"][:8] for d in record.get("redrawn", [])]
    return (f"General student (TinyBERT's stage 1, WikiText-2 valid + test): {facts['documents']:,} documents, "
            f"{facts['sequences']:,} sequences, {facts['wordpieces']:,} wordpieces; cache "
            f"{facts['bytes_per_example']:,.0f} B/example ({facts['cache_bytes'] / 1e9:.1f} GB), labelled in "
            f"{facts['label_seconds'] / 60:.1f} min; {facts['steps']:,} steps in "
            f"{facts['train_seconds'] / 60:.1f} min" + (
                f"; rebuilt on other CPUs as {len(draws)} other draw(s) of that recipe ({', '.join(draws)}; a "
                f"run's `init_files` names the one it used)." if draws else "."))


def rows(sizes: Sizes, pretrained: Path, general: Path | None) -> list[Row]:
    """In the order seed 0 trains them: the goals' rows first, the costly BERT-3 rows over augmentation last."""
    bert3 = bert3_rows(sizes, pretrained)
    late = [r for r in bert3 if r.data == "aug"]
    return bilstm_rows(sizes) + [r for r in bert3 if r not in late] + two_stage_rows(sizes, general) + late


def pretrained_layers(base: str, out: Path, layers: int) -> Path:
    """The first `layers` layers of the pre-trained encoder, saved as a model of their own (BERT-PKD's init)."""
    from transformers import AutoModel

    if not (out / "config.json").exists():
        AutoModel.from_pretrained(base, num_hidden_layers=layers).save_pretrained(out)
    return out


CACHES = {  # name: (augmented data, label values)
    "train": ("originals", {"features": ["cls"]}),
    "aug": ("tang", {"features": []}),
    "aug-tinybert": ("tang", {"features": ["embedding", "hidden", "attention"], "hidden_layers": [1, 2, 3, 4],
                              "attention_layers": [1, 2, 3, 4], "attention": "recompute", "quantize_hidden": True}),
    "aug-minilm": ("tang", {"features": ["relation"]}),
}


class Experiment:
    """The cached steps; each returns what an earlier run (the ledger, else `out`) left when its inputs match."""

    def __init__(self, out: Path, sizes: Sizes, data: Path, ledger: Ledger) -> None:
        self.out, self.sizes, self.ledger, self.protocol = out, sizes, ledger, protocol(sizes)
        self.paths, split = write_split(data, out / "data", sizes.test, sizes.phrases, sizes.train_rows,
                                        validation=sizes.validation)
        self.split = {"train_rows": len(self.paths["train"].read_text(encoding="utf-8").splitlines()) - 1,
                      "dropped": split.dropped, "maximal": split.maximal, "validation": len(split.validation),
                      "sentences": len(split.sentences), "phrases": len(split.phrases)}
        log.info("split: %s", self.split)
        self.teacher = out / "teacher"
        self.cache_dirs: dict[str, Path] = {}  # built (or found built) on this machine
        self.general: Path | None = None
        self.general_files: str | None = None  # its hash: the tinybert4-general runs name the draw they used

    def fine_tune_teacher(self) -> dict[str, Any]:
        """The teacher (trained here, or reused from `out`), which must be the ledger's: the ledger's record."""
        record = finetune_teacher(self.paths["train"], self.teacher, {"epochs": self.sizes.teacher_epochs,
                                                                      "keep_best": True}, self.paths["validation"])

        def describe() -> dict[str, Any]:
            epochs = [{"epoch": e["epoch"], "validation": e["dev_metrics"]["accuracy"]} for e in record["epochs"]]
            return {"epochs": epochs, "best_epoch": record["best_epoch"], "seconds": record["seconds"],
                    "validation": max(e["validation"] for e in epochs), "scores": self.score(self.teacher),
                    "machine": machine_line()}

        return self.ledger.bind_model("teacher", model_fingerprint(self.teacher), describe, TEACHER_BEHAVIOUR)

    def general_init(self) -> Path:
        """TinyBERT's general student (built here, or reused from `out`): the ledger's, or another draw of its
        recipe (the same corpus and steps; a rebuild on another CPU trains to other weights)."""
        student, facts = general_student(self.out, minilm(), self.sizes.general_documents, self.sizes.general_epochs)
        self.general_files = model_fingerprint(student)
        self.ledger.bind_model("general", self.general_files, lambda: {"facts": facts}, GENERAL_RECIPE, redraw=True)
        self.general = student
        return student

    def prepare(self, row: Row) -> None:
        """The cache `row` reads (and TinyBERT's general init), built or found built before its first run here."""
        general = row.needs_general and self.general is None
        if row.data in self.cache_dirs and not general:
            return
        with ray_session(None):
            self.build_caches([row.data])
            if general:
                self.general_init()

    def estimate(self, row: Row, peers: Iterable[Row] = ()) -> float | None:
        """Seconds one more seed of `row` should take here: the mean of its ledger runs whose time carries no note;
        without one, the mean of its `peers`' of the same family over the same cache (the same steps per epoch);
        without those, the longest such run of any row. Plus the recorded build time of its cache (and general
        init) when not built here yet. None: the ledger holds no cleanly timed run."""
        alike = [p for p in peers if p.family == row.family and p.data == row.data and p.name != row.name]
        clean = self.clean_seconds()
        similar = [s for p in alike for s in clean.get(p.name, [])]
        run = next((statistics.mean(t) for t in (clean.get(row.name), similar) if t),
                   max((s for t in clean.values() for s in t), default=None))
        if run is None:
            return None
        builds = []
        if row.data not in self.cache_dirs:
            cache = self.ledger.get(f"caches/{row.data}") or {}
            builds += [cache.get("augment_seconds", 0), cache.get("label_seconds", 0)]
        if row.needs_general and self.general is None:
            facts = (self.ledger.get("general") or {}).get("facts", {})
            builds += [facts.get("label_seconds", 0), facts.get("train_seconds", 0)]
        return run + sum(builds)

    def clean_seconds(self) -> dict[str, list[float]]:
        """Each row's ledger run times that carry no note (a paused or partly counted run predicts nothing)."""
        clean: dict[str, list[float]] = {}
        for r in (r for r in self.ledger.runs(self.protocol) if not r.get("time_note")):
            clean.setdefault(r["row"], []).append(r["seconds"])
        return clean

    def build_caches(self, names: list[str]) -> None:
        """augment → label; the Tang caches share one augmented folder. A cache's size and first build's seconds
        go to the ledger (`caches/<name>`)."""
        data = {"originals": ORIGINALS_ONLY,
                "tang": {"tang.n_iter": self.sizes.aug_n, "tang.skip_subphrases": True}}
        for name in (n for n in names if n not in self.cache_dirs):
            kind, label = CACHES[name]
            folder = self.out / f"cache-{'train' if kind == 'originals' else 'aug'}"
            cache = labelled_cache(self.paths["train"], folder, augmentation("tang", {"columns": SENTENCE_LABEL,
                                                                                    **data[kind]}),
                                   {"teacher": str(self.teacher), **label})
            seconds = reuse_or_run(folder / f"timing-{name}.json", {"cache": str(cache.cache_dir)},
                                   lambda: {"seconds": {"augment_seconds": cache.augment_seconds,
                                                        "label_seconds": cache.label_seconds}})["seconds"]
            self.cache_dirs[name] = cache.cache_dir
            if not self.ledger.knows_build(f"caches/{name}", cache.cache_dir.name):
                totals = json.loads((cache.cache_dir / "_manifest.json").read_text())["totals"]
                self.ledger.record_build(f"caches/{name}", {"fingerprint": cache.cache_dir.name, **totals, **seconds,
                                                            "bytes_on_disk": directory_bytes(cache.cache_dir),
                                                            "machine": machine_line()})
            log.info("cache %s: %s", name, cache.cache_dir)

    def run_student(self, row: Row, seed: int) -> dict[str, Any]:
        """Train one (row, seed), choosing its epochs on validation, then score it on the test sets; the ledger's
        record when it holds the run."""
        held = self.ledger.run(row.name, seed, self.protocol)
        if held is not None:
            return held
        cache_dir, config = self.cache_dirs[row.data], row.config(seed)
        run_dir = self.out / "students" / row.name / f"seed{seed}"

        def fit() -> dict[str, Any]:
            log.info("training %s seed %d", row.name, seed)
            result = train(config, cache_dir, run_dir, self.paths["validation"], COLUMNS, teacher_report=False,
                           overwrite=True)
            per_epoch = math.ceil(json.loads((cache_dir / "_manifest.json").read_text())["totals"]["rows"]
                                  / config.batch_size)
            earlier = sum(max(1, int(s.epochs * per_epoch)) for s in config.stage_configs()[:-1])
            return {"seconds": result.seconds, "steps": result.steps,
                    "epochs_run": (result.steps - earlier) / per_epoch,
                    "best_epoch": (result.best["step"] - earlier) / per_epoch if result.best else None,
                    "validation": result.best["value"] if result.best else None,
                    "scores": self.score(result.student_dir),
                    "parameters": result.report["student"]["parameters"] if result.report else None}

        result = reuse_or_run(run_dir / "result.json", {"cache": str(cache_dir), "recipe": config.resolved()}, fit)
        kept = {k: v for k, v in result.items() if k not in ("cache", "recipe")}
        init = {"init_files": self.general_files} if row.needs_general else {}
        return self.ledger.put_run(row.name, seed, {"protocol": self.protocol, "cache": cache_dir.name,
                                                    "recipe": digest(config.resolved()), **init, **kept,
                                                    "machine": machine_line()})

    def score(self, model_dir: Path) -> dict[str, float]:
        return {name: evaluate_models([str(model_dir)], self.paths[name], COLUMNS)["models"][str(model_dir)]["accuracy"]
                for name in TESTS}

    def finished(self, plan: list[Row]) -> dict[str, list[dict[str, Any]]]:
        """Each row's finished runs in the ledger, by seed."""
        return {row.name: [r for seed in range(self.sizes.seeds)
                           if (r := self.ledger.run(row.name, seed, self.protocol)) is not None] for row in plan}


def cell(values: list[float], seeds: int) -> str:
    if not values:
        return "not run yet"
    mean, std = mean_std(values)
    text = f"{100 * mean:.2f} ± {100 * std:.2f}" if std is not None else f"{100 * mean:.2f}"
    return text if len(values) == seeds else f"{text} ({len(values)} of {seeds} seeds)"


def note_marks(runs: list[dict[str, Any]], notes: list[str]) -> str:
    """" [n]" for each run's `time_note` (what its train time covers), numbered in `notes` (shared by the table)."""
    marks = []
    for note in dict.fromkeys(r["time_note"] for r in runs if r.get("time_note")):
        if note not in notes:
            notes.append(note)
        marks.append(f"[{notes.index(note) + 1}]")
    return "".join(f" {m}" for m in marks)


def validations(runs: list[dict[str, Any]]) -> list[float]:
    """The runs' validation scores (a run that kept no best epoch has none)."""
    return [r["validation"] for r in runs if r.get("validation") is not None]


def time_cell(runs: list[dict[str, Any]], notes: list[str]) -> str:
    """Mean train time per seed over the runs whose time is clean; the noted ones are named as left out. Only
    when every run carries a note is the mean theirs, marked."""
    clean = [r for r in runs if not r.get("time_note")]
    minutes = statistics.mean(r["seconds"] for r in clean or runs) / 60
    if not clean:
        return f"{minutes:.1f} min{note_marks(runs, notes)}"
    left_out = note_marks([r for r in runs if r.get("time_note")], notes)
    return f"{minutes:.1f} min (without{left_out})" if left_out else f"{minutes:.1f} min"


def row_line(row: Row, runs: list[dict[str, Any]], caches: dict[str, dict], seeds: int, notes: list[str]) -> str:
    """One table row: mean ± std over the finished seeds."""
    tested = {name: [r["scores"][name] for r in runs] for name in TESTS}
    validation = validations(runs)
    epochs = time = "–"
    if runs:
        epochs = f"{statistics.mean(r['best_epoch'] or 0 for r in runs):.1f} / " \
                 f"{statistics.mean(r['epochs_run'] for r in runs):.1f}"
        time = time_cell(runs, notes)
    cache = "–"
    if row.uses_teacher and row.data in caches:
        totals = caches[row.data]
        cache = f"{totals['bytes_per_example']:,.0f} B × {totals['rows']:,}"
    return (f"| {row.family} | {row.init} | {row.data} | {row.losses} | {cell(validation, seeds)} | "
            f"{cell(tested['sentences'], seeds)} | {cell(tested['phrases'], seeds)} | {epochs} | {time} | {cache} |")


def mean_of(runs: dict[str, list[dict]], name: str, test: str = "sentences") -> float | None:
    values = [r["scores"][test] for r in runs.get(name, [])]
    return statistics.mean(values) if values else None


def goals(runs: dict[str, list[dict]], teacher: float | None) -> list[str]:
    """The issue's goals on the test sentences, each met, missed or not yet measurable."""
    m = {name: mean_of(runs, name) for name in runs}

    def verdict(ok: bool | None) -> str:
        return "not measured yet" if ok is None else ("met" if ok else "**missed**")

    def percent(value: float | None) -> str:
        return "–" if value is None else f"{100 * value:.2f}"

    ce, aug = m.get("bilstm-ce"), m.get("bilstm-kd-aug")
    closed = (aug - ce) / (teacher - ce) if None not in (ce, aug, teacher) else None
    bert_kd = [name for name in ("bert3-pretrained-kd", "bert3-teacher-kd")
               if m.get(name) is not None and validations(runs[name])]
    chosen = max(bert_kd, key=lambda name: statistics.mean(validations(runs[name])), default=None)
    best_kd = m[chosen] if chosen else None  # the init validation prefers: the test sets choose nothing
    tiny, general, mini = m.get("tinybert4-random"), m.get(GENERAL_ROW), m.get("minilm4-random")

    return [
        f"- BiLSTM KD + aug closes ≥ 45 % of the CE → teacher gap: "
        f"{'–' if closed is None else f'{100 * closed:.0f} %'} ({verdict(None if closed is None else closed >= 0.45)})",
        f"- BERT-3 with KD ≥ BiLSTM KD + aug: init chosen on validation {percent(best_kd)} vs {percent(aug)} "
        f"({verdict(None if best_kd is None or aug is None else best_kd >= aug)})",
        f"- TinyBERT-4 from general init ≥ 85: {percent(general)} "
        f"({verdict(None if general is None else general >= 0.85)})",
        f"- MiniLM student ≥ TinyBERT-4 (random init, the same start): {percent(mini)} vs {percent(tiny)} "
        f"({verdict(None if mini is None or tiny is None else mini >= tiny)})",
    ]


def teacher_line(teacher: dict[str, Any] | None) -> str:
    if teacher is None:
        return "| teacher MiniLM-L6 | pre-trained | train | CE (fine-tuned) | not trained yet | | | – | – | – |"
    t = teacher["scores"]
    return (f"| teacher MiniLM-L6 | pre-trained | train | CE (fine-tuned, best of {len(teacher['epochs'])} epochs: "
            f"{teacher['best_epoch']}) | {100 * teacher['validation']:.2f} | {100 * t['sentences']:.2f} | "
            f"{100 * t['phrases']:.2f} | – | {teacher['seconds'] / 60:.1f} min | – |")


def cache_line(name: str, c: dict[str, Any]) -> str:
    size = f" ({c['bytes_on_disk'] / 1e6:,.0f} MB)" if c.get("bytes_on_disk") else ""
    took = f", labelled in {c['label_seconds'] / 60:.1f} min" if c.get("label_seconds") else ""
    return f"{name}: {c['rows']:,} rows, {c['bytes_per_example']:,.0f} B/example{size}{took}"


def summarise(exp: Experiment, plan: list[Row]) -> str:
    """The table, the goals and the facts under it, all from the ledger."""
    ledger, notes = exp.ledger, []
    runs, teacher = exp.finished(plan), ledger.get("teacher")
    caches = {name: c for name in CACHES if (c := ledger.get(f"caches/{name}")) is not None}
    lines = ["| student | init | data | losses | validation | test sentences | test phrases | epochs (best / run) | "
             "train time / seed | teacher cache |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
             teacher_line(teacher), *(row_line(row, runs[row.name], caches, exp.sizes.seeds, notes) for row in plan)]
    s = exp.split
    general = ledger.get("general")
    return "\n".join([
        *lines, "", *(f"[{i}] {note}\n" for i, note in enumerate(notes, 1)),
        "Goals (test sentences):", *goals(runs, teacher["scores"]["sentences"] if teacher else None), "",
        f"Split: {s['train_rows']:,} training rows ({s['dropped']:,} inside held-out sentences dropped), "
        f"{s['validation']:,} validation and {s['sentences']:,} test sentences (of {s['maximal']:,} whole "
        f"sentences), {s['phrases']:,} test phrases. Caches: {'; '.join(cache_line(n, c) for n, c in caches.items())}. "
        f"{general_line(general)} Ledger: {ledger}."])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SST2_TRAIN))
    parser.add_argument("--out", default="out/sst2-scale")
    parser.add_argument("--seeds", type=int, help="training seeds of each row (default 3)")
    parser.add_argument("--only", help="comma-separated row names or shell patterns (bilstm-kd, 'bert3-*', "
                                       "'tinybert4-*', minilm4-random)")
    parser.add_argument("--quick", action="store_true", help="3 000 training rows: checks the wiring")
    parser.add_argument("--budget-minutes", type=float, help="start only the runs whose estimate (the ledger's "
                                                                "times) fits in this many minutes from now")
    parser.add_argument("--report", action="store_true", help="tabulate the ledger's runs only; train nothing new")
    parser.add_argument("--ledger", help="the folder of finished runs (default docs/results/sst2-scale; --quick: "
                                         "<out>/ledger)")
    return parser.parse_args()


def todo(exp: Experiment, plan: list[Row]) -> list[tuple[Row, int]]:
    """The (row, seed) runs the ledger lacks, seed 0 of every row first: a run cut short leaves every row a seed."""
    return [(row, seed) for seed in range(exp.sizes.seeds) for row in plan
            if exp.ledger.run(row.name, seed, exp.protocol) is None]


def train_missing(exp: Experiment, missing: list[tuple[Row, int]], deadline: float | None = None,
                  peers: Iterable[Row] = ()) -> None:
    """The teacher, then each missing run, its cache and init built on first need. Under a `deadline`
    (`time.monotonic()`), only the runs whose estimate fits the time left start: a run cut off when the machine
    goes is lost with it (its checkpoints live in `out/`). `peers`: the table's rows, whose times estimate a row
    with none of its own (`Experiment.estimate`)."""
    exp.fine_tune_teacher()
    for row, seed in missing:
        cost = exp.estimate(row, peers) if deadline is not None else None
        if deadline is not None and (cost is None or cost > deadline - time.monotonic()):
            log.info("not starting %s seed %d (%s, %.0f min left)", row.name, seed, "no clean time in the ledger"
                     if cost is None else f"about {cost / 60:.0f} min", (deadline - time.monotonic()) / 60)
            continue
        exp.prepare(row)
        exp.run_student(row, seed)


def main() -> None:
    args, started = parse_args(), time.monotonic()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    for name in ("bench", "distill.progress", "distill.train", "distill.finetune"):  # a line per 30 s of long work
        logging.getLogger(name).setLevel(logging.INFO)
    sizes = QUICK if args.quick else Sizes()
    sizes.seeds = args.seeds or sizes.seeds
    out = Path(args.out)
    ledger = Ledger(Path(args.ledger) if args.ledger else (out / "ledger" if args.quick else LEDGERS / "sst2-scale"))
    exp = Experiment(out, sizes, Path(args.data), ledger)
    patterns = args.only.split(",") if args.only else ["*"]
    table = rows(sizes, pretrained_layers(minilm(), out / "bert3-pretrained", 3), general_dir(out))
    plan = [r for r in table if any(fnmatch.fnmatchcase(r.name, p) for p in patterns)]
    missing = [] if args.report else todo(exp, plan)
    log.info("%d runs to train (%s)", len(missing), ", ".join(f"{r.name} seed {s}" for r, s in missing) or "none")
    if missing:
        train_missing(exp, missing, started + 60 * args.budget_minutes if args.budget_minutes else None, table)
    text = summarise(exp, plan)
    print(text)
    (out / "results.md").parent.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(text + "\n")


if __name__ == "__main__":
    run_timed(main)
