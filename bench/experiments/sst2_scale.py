"""SST-2 students under one protocol: training, validation and test sentences, every choice made on
validation, three seeds per row (docs/results.md, "SST-2 students: one protocol").

    nohup python -m bench.experiments.sst2_scale > out/sst2-scale.log 2>&1 &   # every step cached: rerun to resume
    python -m bench.experiments.sst2_scale --report            # the table from the finished runs; trains nothing
    python -m bench.experiments.sst2_scale --quick             # wiring check on 3 000 training rows
    python -m bench.experiments.sst2_scale --only bilstm,bert3  # rows whose name starts with one of these

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
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    ORIGINALS_ONLY, SENTENCE_LABEL, SST2_TRAIN, augmentation, directory_bytes, finetune_teacher, labelled_cache,
    machine_line, mean_std, minilm, recipe, reuse_or_run, run_timed,
)
from bench.experiments.general_student import general_dir, general_facts, general_student
from bench.makers.sst2_split import write_split
from distill.common.columns import Columns
from distill.common.ray_runtime import ray_session
from distill.evaluate import evaluate_models
from distill.train.loop import train

log = logging.getLogger("bench")
COLUMNS = Columns(**SENTENCE_LABEL)
TESTS = ("sentences", "phrases")


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
        rows.append(Row("tinybert4-general", "TinyBERT-4 (4×312)", "general (WikiText-2)", "aug-tinybert", tiny,
                        "tinybert4", {**best, "student.init": str(general)}, stages=stages))
    rows.append(Row("minilm4-random", "MiniLM-distilled (4×312)", "random", "aug-minilm",
                    "last-layer attention + value relations (KL), then soft CE", "minilm", best, stages=stages))
    return rows


def general_line(out: Path) -> str:
    facts = general_facts(out)
    if facts is None:
        return "General student: not built yet."
    return (f"General student (TinyBERT's stage 1, WikiText-2 valid + test): {facts['documents']:,} documents, "
            f"{facts['sequences']:,} sequences, {facts['wordpieces']:,} wordpieces; cache "
            f"{facts['bytes_per_example']:,.0f} B/example ({facts['cache_bytes'] / 1e9:.1f} GB), labelled in "
            f"{facts['label_seconds'] / 60:.1f} min; {facts['steps']:,} steps in "
            f"{facts['train_seconds'] / 60:.1f} min.")


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
    """The cached steps; each returns what an earlier run left when its inputs match."""

    def __init__(self, out: Path, sizes: Sizes, data: Path) -> None:
        self.out, self.sizes = out, sizes
        self.paths, split = write_split(data, out / "data", sizes.test, sizes.phrases, sizes.train_rows,
                                        validation=sizes.validation)
        self.split = {"train_rows": len(self.paths["train"].read_text(encoding="utf-8").splitlines()) - 1,
                      "dropped": split.dropped, "maximal": split.maximal, "validation": len(split.validation),
                      "sentences": len(split.sentences), "phrases": len(split.phrases)}
        log.info("split: %s", self.split)
        self.teacher = out / "teacher"
        self.caches: dict[str, tuple[Path, dict]] = {}

    def fine_tune_teacher(self) -> dict[str, Any]:
        return finetune_teacher(self.paths["train"], self.teacher, {"epochs": self.sizes.teacher_epochs,
                                                                    "keep_best": True}, self.paths["validation"])

    def build_caches(self, names: list[str], build: bool = True) -> None:
        """augment → label; the Tang caches share one augmented folder. First build's seconds in `timing-*.json`.
        `build` False (`--report`): only the caches a finished build recorded."""
        data = {"originals": ORIGINALS_ONLY,
                "tang": {"tang.n_iter": self.sizes.aug_n, "tang.skip_subphrases": True}}
        for name in names:
            kind, label = CACHES[name]
            folder = self.out / f"cache-{'train' if kind == 'originals' else 'aug'}"
            record = folder / f"timing-{name}.json"
            if not build:
                if record.exists():
                    self._add_cache(name, Path(json.loads(record.read_text())["cache"]), record)
                continue
            cache = labelled_cache(self.paths["train"], folder, augmentation("tang", {"columns": SENTENCE_LABEL,
                                                                                    **data[kind]}),
                                   {"teacher": str(self.teacher), **label})
            reuse_or_run(record, {"cache": str(cache.cache_dir)},
                         lambda: {"seconds": {"augment_seconds": cache.augment_seconds,
                                              "label_seconds": cache.label_seconds}})
            self._add_cache(name, cache.cache_dir, record)

    def _add_cache(self, name: str, cache_dir: Path, record: Path) -> None:
        totals = {**json.loads((cache_dir / "_manifest.json").read_text())["totals"],
                  **json.loads(record.read_text())["seconds"], "bytes_on_disk": directory_bytes(cache_dir)}
        self.caches[name] = (cache_dir, totals)
        log.info("cache %s: %d rows, %.0f bytes/example", name, totals["rows"], totals["bytes_per_example"])

    def run_student(self, row: Row, seed: int) -> dict[str, Any]:
        """Train one (row, seed), choosing its epochs on validation, then score it on the test sets."""
        cache_dir, totals = self.caches[row.data]
        run_dir = self.out / "students" / row.name / f"seed{seed}"
        config = row.config(seed)

        def fit() -> dict[str, Any]:
            log.info("training %s seed %d", row.name, seed)
            result = train(config, cache_dir, run_dir, self.paths["validation"], COLUMNS, teacher_report=False,
                           overwrite=True)
            per_epoch = math.ceil(totals["rows"] / config.batch_size)
            earlier = sum(max(1, int(s.epochs * per_epoch)) for s in config.stage_configs()[:-1])
            return {"seconds": result.seconds, "steps": result.steps,
                    "epochs_run": (result.steps - earlier) / per_epoch,
                    "best_epoch": (result.best["step"] - earlier) / per_epoch if result.best else None,
                    "validation": result.best["value"] if result.best else None,
                    "scores": self.score(result.student_dir),
                    "parameters": result.report["student"]["parameters"] if result.report else None}

        return reuse_or_run(run_dir / "result.json", {"cache": str(cache_dir), "recipe": config.resolved()}, fit)

    def score(self, model_dir: Path) -> dict[str, float]:
        return {name: evaluate_models([str(model_dir)], self.paths[name], COLUMNS)["models"][str(model_dir)]["accuracy"]
                for name in TESTS}

    def finished(self, row: Row, seed: int) -> dict[str, Any] | None:
        path = self.out / "students" / row.name / f"seed{seed}" / "result.json"
        return json.loads(path.read_text()) if path.exists() else None


def cell(values: list[float], seeds: int) -> str:
    if not values:
        return "not run yet"
    mean, std = mean_std(values)
    text = f"{100 * mean:.2f} ± {100 * std:.2f}" if std is not None else f"{100 * mean:.2f}"
    return text if len(values) == seeds else f"{text} ({len(values)} of {seeds} seeds)"


def row_line(row: Row, runs: list[dict[str, Any]], caches: dict, seeds: int) -> str:
    """One table row: mean ± std over the finished seeds."""
    tested = {name: [r["scores"][name] for r in runs] for name in TESTS}
    validation = [r["validation"] for r in runs if r.get("validation") is not None]
    epochs = time = "–"
    if runs:
        epochs = f"{statistics.mean(r['best_epoch'] or 0 for r in runs):.1f} / " \
                 f"{statistics.mean(r['epochs_run'] for r in runs):.1f}"
        time = f"{statistics.mean(r['seconds'] for r in runs) / 60:.1f} min"
    cache = "–"
    if row.uses_teacher and row.data in caches:
        totals = caches[row.data][1]
        cache = f"{totals['bytes_per_example']:,.0f} B × {totals['rows']:,}"
    return (f"| {row.family} | {row.init} | {row.data} | {row.losses} | {cell(validation, seeds)} | "
            f"{cell(tested['sentences'], seeds)} | {cell(tested['phrases'], seeds)} | {epochs} | {time} | {cache} |")


def mean_of(runs: dict[str, list[dict]], name: str, test: str = "sentences") -> float | None:
    values = [r["scores"][test] for r in runs.get(name, [])]
    return statistics.mean(values) if values else None


def goals(runs: dict[str, list[dict]], teacher: float) -> list[str]:
    """The issue's goals on the test sentences, each met, missed or not yet measurable."""
    m = {name: mean_of(runs, name) for name in runs}

    def verdict(ok: bool | None) -> str:
        return "not measured yet" if ok is None else ("met" if ok else "**missed**")

    ce, aug = m.get("bilstm-ce"), m.get("bilstm-kd-aug")
    closed = (aug - ce) / (teacher - ce) if ce is not None and aug is not None else None
    bert_kd = [m.get(f"bert3-{init}-kd") for init in ("pretrained", "teacher")]
    best_kd = max((v for v in bert_kd if v is not None), default=None)
    tiny, general, mini = m.get("tinybert4-random"), m.get("tinybert4-general"), m.get("minilm4-random")
    return [
        f"- BiLSTM KD + aug closes ≥ 45 % of the CE → teacher gap: "
        f"{'–' if closed is None else f'{100 * closed:.0f} %'} ({verdict(None if closed is None else closed >= 0.45)})",
        f"- BERT-3 with KD ≥ BiLSTM KD + aug: best init {'–' if best_kd is None else f'{100 * best_kd:.2f}'} vs "
        f"{'–' if aug is None else f'{100 * aug:.2f}'} "
        f"({verdict(None if best_kd is None or aug is None else best_kd >= aug)})",
        f"- TinyBERT-4 from general init ≥ 85: {'–' if general is None else f'{100 * general:.2f}'} "
        f"({verdict(None if general is None else general >= 0.85)})",
        f"- MiniLM student ≥ TinyBERT-4 (random init, the same start): {'–' if mini is None else f'{100 * mini:.2f}'}"
        f" vs {'–' if tiny is None else f'{100 * tiny:.2f}'} ({verdict(None if mini is None or tiny is None else mini >= tiny)})",
    ]


def summarise(exp: Experiment, plan: list[Row], runs: dict[str, list[dict]], teacher: dict[str, Any]) -> str:
    seeds, t = exp.sizes.seeds, teacher["scores"]
    lines = ["| student | init | data | losses | validation | test sentences | test phrases | epochs (best / run) | "
             "train time / seed | teacher cache |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
             f"| teacher MiniLM-L6 | pre-trained | train | CE (fine-tuned, best of {len(teacher['epochs'])} epochs: "
             f"{teacher['best_epoch']}) | {100 * teacher['validation']:.2f} | {100 * t['sentences']:.2f} | "
             f"{100 * t['phrases']:.2f} | – | {teacher['seconds'] / 60:.1f} min | – |",
             *(row_line(row, runs.get(row.name, []), exp.caches, seeds) for row in plan)]
    caches = "; ".join(f"{name}: {c['rows']:,} rows, {c['bytes_per_example']:,.0f} B/example "
                       f"({c['bytes_on_disk'] / 1e6:,.0f} MB), labelled in {c['label_seconds'] / 60:.1f} min"
                       for name, (_, c) in exp.caches.items())
    s = exp.split
    return "\n".join([*lines, "", "Goals (test sentences):", *goals(runs, t["sentences"]), "",
                      f"Split: {s['train_rows']:,} training rows ({s['dropped']:,} inside held-out sentences dropped), "
                      f"{s['validation']:,} validation and {s['sentences']:,} test sentences (of {s['maximal']:,} whole "
                      f"sentences), {s['phrases']:,} test phrases. Caches: {caches}. {general_line(exp.out)} "
                      f"{machine_line()}"])


def teacher_record(exp: Experiment, record: dict[str, Any]) -> dict[str, Any]:
    best = max(record["epochs"], key=lambda e: e["dev_metrics"]["accuracy"])
    return {**record, "validation": best["dev_metrics"]["accuracy"], "scores": exp.score(exp.teacher)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SST2_TRAIN))
    parser.add_argument("--out", default="out/sst2-scale")
    parser.add_argument("--seeds", type=int, help="training seeds of each row (default 3)")
    parser.add_argument("--only", help="comma-separated row-name prefixes (bilstm, bert3, tinybert4, minilm4)")
    parser.add_argument("--quick", action="store_true", help="3 000 training rows: checks the wiring")
    parser.add_argument("--report", action="store_true", help="tabulate the finished runs only; train nothing new")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    sizes = QUICK if args.quick else Sizes()
    sizes.seeds = args.seeds or sizes.seeds
    out = Path(args.out)
    exp = Experiment(out, sizes, Path(args.data))
    record = json.loads((exp.teacher / "finetune.json").read_text()) if args.report else exp.fine_tune_teacher()
    prefixes = tuple(args.only.split(",")) if args.only else ("",)
    plan = [r for r in rows(sizes, pretrained_layers(minilm(), out / "bert3-pretrained", 3), general_dir(out))
            if r.name.startswith(prefixes)]
    if args.report:
        exp.build_caches(sorted({r.data for r in plan}), build=False)
    else:
        with ray_session(None):
            exp.build_caches(sorted({r.data for r in plan}))
    runs: dict[str, list[dict]] = {}
    general_ready = args.report  # built (cached on disk) when its row is first reached, then not revisited
    for seed in range(sizes.seeds):  # seed 0 of every row first: a run cut short leaves every row a seed
        for row in plan:
            if row.name == "tinybert4-general" and not general_ready:
                with ray_session(None):
                    general_student(out, minilm(), sizes.general_documents, sizes.general_epochs)
                general_ready = True
            result = exp.finished(row, seed) if args.report else exp.run_student(row, seed)
            if result:
                runs.setdefault(row.name, []).append(result)
    text = summarise(exp, plan, runs, teacher_record(exp, record))
    print(text)
    (out / "results.md").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps({"runs": runs, "sizes": asdict(sizes), "split": exp.split,
                                                  "caches": {k: v[1] for k, v in exp.caches.items()}}, indent=2,
                                                 default=str))


if __name__ == "__main__":
    run_timed(main)
