"""SST-2 distillation at the papers' scale, with seeds, scored on whole held-out sentences
(docs/results.md, "At the papers' scale").

    python -m bench.experiments.sst2_scale            # the full run, in the background: see docs/results.md
    python -m bench.experiments.sst2_scale --seeds 1  # seed 0 only (the grids are seed 0 in any case)
    python -m bench.experiments.sst2_scale --report   # the table from the finished runs; trains nothing
    python -m bench.experiments.sst2_scale --quick    # wiring check on 3 000 rows, ~10 min (its BERTs stay at chance)

Every step is cached (split files, the teacher's record, cache fingerprints, each student's
`result.json`; a killed student resumes from its checkpoint): rerun to continue. Steps: held-out
whole sentences and their sub-phrases (bench/makers/sst2_split.py); the MiniLM-L6 teacher (best of
its epochs); the training set cached as is and with Tang augmentation (tang.yaml, rows of at least
`aug_min_words` words); BiLSTM students (tang_bilstm.yaml: CE only, logit MSE + CE, + augmentation;
early stopping, best epoch kept); 3-layer BERTs from the pre-trained encoder's first layers
(pkd_skip.yaml: CE, a KD grid over T x alpha, then PKD over beta at the best KD), every chosen row
with `--seeds` seeds, all scored on both held-out sets.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    ORIGINALS_ONLY, SENTENCE_LABEL, SST2_TRAIN, augmentation, directory_bytes, finetune_teacher, labelled_cache,
    machine_line, mean_std, minilm, recipe, reuse_or_run, run_timed,
)
from bench.makers.sst2_split import write_split
from distill.common.columns import Columns
from distill.common.ray_runtime import ray_session
from distill.evaluate import evaluate_models
from distill.train.loop import train

log = logging.getLogger("bench")
COLUMNS = Columns(**SENTENCE_LABEL)
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
KD_GRID = {"temperature": (5.0, 10.0, 20.0), "alpha": (0.2, 0.5, 0.7)}  # BERT-PKD §4.2
PKD_BETAS = (10.0, 100.0, 500.0, 1000.0)


def kd_values(temperature: float, alpha: float) -> dict[str, float]:
    """BERT-PKD's L = (1 - alpha) L_CE + alpha L_DS, L_DS at temperature T."""
    return {"losses.ce.weight": round(1 - alpha, 6), "losses.kd.weight": alpha, "losses.kd.temperature": temperature}


def spec(name: str, family: str, data: str, losses: str, base: str, values: dict[str, Any],
         without: tuple[str, ...] = ()) -> dict[str, Any]:
    """One row: its student recipe is `base`.yaml with `values` (see bench.common.recipe)."""
    return {"name": name, "family": family, "data": data, "losses": losses,
            "recipe": {"name": base, "values": values, "without": without}}


def lstm_spec(name: str, losses: dict, data: str, epochs: float, sizes: Sizes, text: str) -> dict[str, Any]:
    """Tang's BiLSTM, scored every epoch, stopped after `patience` epochs without a new best, the best kept."""
    return spec(name, "BiLSTM", data, text, "tang_bilstm", {
        **losses, "batch_size": sizes.lstm_batch, "epochs": epochs, "keep_best": True,
        "early_stopping_patience": sizes.patience, "checkpoint_every": 2000})


def bert_spec(name: str, losses: dict, init: Path, sizes: Sizes, text: str, without: tuple[str, ...] = ()) -> dict:
    """BERT-PKD's recipe from the pre-trained encoder's first 3 layers (`init`)."""
    return spec(name, "3-layer BERT", "train", text, "pkd_skip", {
        "student.num_layers": 3, "student.init": str(init), "epochs": sizes.bert_epochs, "checkpoint_every": 500,
        **losses}, without)


def lstm_rows(sizes: Sizes) -> list[dict[str, Any]]:
    return [
        lstm_spec("bilstm-ce", {"losses": {"ce": {}}}, "train", sizes.lstm_epochs, sizes, "CE only (no teacher)"),
        lstm_spec("bilstm-kd", {}, "train", sizes.lstm_epochs, sizes, "logit MSE + CE (Tang)"),
        lstm_spec("bilstm-kd-aug", {}, "aug", sizes.lstm_aug_epochs, sizes, "logit MSE + CE (Tang)"),
    ]


def kd_grid(sizes: Sizes, init: Path) -> list[dict[str, Any]]:
    return [bert_spec(f"bert3-kd-t{t:g}-a{a:g}", kd_values(t, a), init, sizes, f"KD (T = {t:g}, α = {a:g}) + CE",
                      ("losses.pkd",)) for t, a in itertools.product(KD_GRID["temperature"], KD_GRID["alpha"])]


def pkd_grid(sizes: Sizes, init: Path, temperature: float, alpha: float) -> list[dict[str, Any]]:
    return [bert_spec(f"bert3-pkd-t{temperature:g}-a{alpha:g}-b{b:g}",
                      {**kd_values(temperature, alpha), "losses.pkd.weight": b}, init, sizes,
                      f"KD (T = {temperature:g}, α = {alpha:g}) + CE + PKD-skip (β = {b:g})")
            for b in PKD_BETAS]


def seeded(spec: dict[str, Any], seed: int) -> dict[str, Any]:
    plan = spec["recipe"]
    return {**spec, "seed": seed, "run": f"{spec['name']}/seed{seed}",
            "recipe": {**plan, "values": {**plan["values"], "seed": seed}}}


def pretrained_layers(base: str, out: Path, layers: int) -> Path:
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
        self.split = {"train_rows": len(self.paths["train"].read_text(encoding="utf-8").splitlines()) - 1,
                      "dropped": split.dropped, "maximal": split.maximal, "sentences": len(split.sentences),
                      "phrases": len(split.phrases)}
        log.info("split: %s", self.split)
        self.teacher = out / "teacher"
        self.caches: dict[str, tuple[Path, dict]] = {}

    def fine_tune_teacher(self) -> dict[str, Any]:
        return finetune_teacher(self.paths["train"], self.teacher, {"epochs": self.sizes.teacher_epochs,
                                                                    "keep_best": True}, self.paths["sentences"])

    def build_caches(self) -> None:
        """augment → label, twice; the first build's seconds are kept in `timing.json`."""
        tang = {"tang.n_iter": self.sizes.aug_n, "tang.min_words": self.sizes.aug_min_words}
        for name, values, features in (("train", ORIGINALS_ONLY, ["cls"]), ("aug", tang, [])):
            cache = labelled_cache(self.paths["train"], self.out / f"cache-{name}",
                                   augmentation("tang", {"columns": SENTENCE_LABEL, **values}),
                                   {"teacher": str(self.teacher), "features": features})
            timing = reuse_or_run(self.out / f"cache-{name}" / "timing.json", {"cache": str(cache.cache_dir)},
                                  lambda: {"seconds": {"augment_seconds": cache.augment_seconds,
                                                       "label_seconds": cache.label_seconds}})
            totals = {**cache.totals, **timing["seconds"], "bytes_on_disk": directory_bytes(cache.cache_dir)}
            self.caches[name] = (cache.cache_dir, totals)
            log.info("cache %s: %d rows, %.1f MB", name, totals["rows"], totals["bytes_on_disk"] / 1e6)

    def run_student(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Train one (row, seed) and score it on both held-out sets; a finished run is read back."""
        cache_dir, totals = self.caches[spec["data"]]
        run_dir = self.out / "students" / spec["run"]
        config = recipe(**spec["recipe"])

        def fit() -> dict[str, Any]:
            log.info("training %s", spec["run"])
            result = train(config, cache_dir, run_dir, self.paths["sentences"], COLUMNS, teacher_report=False,
                           overwrite=True)
            steps_per_epoch = math.ceil(totals["rows"] / config.batch_size)
            return {"seconds": result.seconds, "steps": result.steps, "epochs_run": result.steps / steps_per_epoch,
                    "scores": self.score(result.student_dir),
                    "best_epoch": result.best["step"] / steps_per_epoch if result.best else None,
                    "parameters": result.report["student"]["parameters"] if result.report else None}

        return reuse_or_run(run_dir / "result.json", {"cache": str(cache_dir), "recipe": config.resolved()}, fit)

    def score(self, model_dir: Path) -> dict[str, float]:
        return {name: evaluate_models([str(model_dir)], self.paths[name], COLUMNS)["models"][str(model_dir)]["accuracy"]
                for name in HELD_OUT}


def best_by(records: dict[str, dict[str, Any]], names: list[str]) -> str:
    """The grid entry with the best held-out sentence accuracy (seed 0); ties go to the first."""
    return max(names, key=lambda n: (records[n]["scores"]["sentences"], -names.index(n)))


def cell(values: list[float]) -> str:
    mean, std = mean_std(values)
    return f"{100 * mean:.2f} ± {100 * std:.2f}" if std is not None else f"{100 * mean:.2f} (1 seed)"


def row_line(row: dict[str, Any], caches: dict) -> str:
    """One table row: mean ± std over the row's seeds."""
    runs = row["runs"]
    acc = {name: [r["scores"][name] for r in runs] for name in HELD_OUT}
    mean = {key: statistics.mean(r[key] for r in runs) for key in ("seconds", "epochs_run")}
    epochs = "–" if runs[0]["best_epoch"] is None else \
        f"{statistics.mean(r['best_epoch'] for r in runs):.1f} / {mean['epochs_run']:.1f}"
    cache = "–"
    if row["uses_teacher"]:
        _, totals = caches[row["data"]]
        cache = f"{totals['bytes_on_disk'] / 1e6:,.1f} MB, {totals['rows']:,} rows"
    return (f"| {row['family']} | {row['data_text']} | {row['losses']} | {len(runs)} | {cell(acc['sentences'])} "
            f"| {cell(acc['phrases'])} | {epochs} | {mean['seconds'] / 60:.1f} min | {cache} |")


def gaps_closed(rows: list[dict[str, Any]], teacher_scores: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per held-out set: the share of the BiLSTM's CE → teacher gap that KD + augmentation closes, with its s.e."""
    by_name = {row["name"]: row["runs"] for row in rows}
    if "bilstm-ce" not in by_name or "bilstm-kd-aug" not in by_name:
        return {}
    gaps = {}
    for name in HELD_OUT:
        ce, aug = (mean_std([r["scores"][name] for r in by_name[key]]) for key in ("bilstm-ce", "bilstm-kd-aug"))
        gap = teacher_scores[name] - ce[0]
        spread = math.sqrt(sum((s or 0.0) ** 2 / len(by_name[key]) for s, key in ((ce[1], "bilstm-ce"),
                                                                                   (aug[1], "bilstm-kd-aug"))))
        gaps[name] = {"closed": (aug[0] - ce[0]) / gap, "closed_se": spread / gap, "gap": gap}
    return gaps


def summarise(rows: list[dict[str, Any]], teacher: dict[str, Any], caches: dict, grid: list[dict[str, Any]],
              split: dict, sizes: Sizes) -> tuple[str, dict[str, Any]]:
    """The README table (mean ± std over seeds), the gap closed and the seed-0 grids, as markdown + JSON."""
    t = teacher["scores"]
    lines = ["| student | data | losses | seeds | held-out sentences | held-out phrases | epochs (best / run) | "
             "train time | teacher cache |", "|---|---|---|---:|---:|---:|---:|---:|---:|",
             f"| teacher MiniLM-L6 (best of {len(teacher['epochs'])} epochs: {teacher['best_epoch']}) | train | "
             f"CE (fine-tuned) | 1 | {100 * t['sentences']:.2f} | {100 * t['phrases']:.2f} | – | "
             f"{teacher['seconds'] / 60:.1f} min | – |", *(row_line(row, caches) for row in rows)]
    text, gaps = "\n".join(lines), gaps_closed(rows, t)
    if gaps:
        text += "\n\nBiLSTM, CE → teacher gap closed by KD + augmentation: " + "; ".join(
            f"{name} {100 * g['closed']:.0f} % ± {100 * g['closed_se']:.0f} (gap {100 * g['gap']:.2f} points)"
            for name, g in gaps.items())
    if grid:
        text += "\n\n3-layer BERT grid (seed 0, held-out sentences): " + ", ".join(
            f"{g['losses']}: {100 * g['scores']['sentences']:.2f}" for g in grid)
    caches_text = "; ".join(f"{name}: {c['rows']:,} rows, {c['bytes_on_disk'] / 1e6:,.1f} MB, augmented in "
                            f"{c['augment_seconds'] / 60:.1f} min, labelled in {c['label_seconds'] / 60:.1f} min"
                            for name, (_, c) in caches.items())
    text += (f"\n\nSplit: {split['train_rows']:,} training rows ({split['dropped']:,} inside held-out sentences "
             f"dropped), {split['sentences']:,} held-out sentences (of {split['maximal']:,} maximal rows), "
             f"{split['phrases']:,} held-out phrases. Caches: {caches_text}. Teacher per epoch (held-out sentences): "
             + ", ".join(f"{e['epoch']}: {100 * e['dev_metrics']['accuracy']:.2f}" for e in teacher["epochs"])
             + f". {machine_line()}")
    return text, {"rows": rows, "teacher": teacher, "gaps": gaps, "grid": grid, "split": split, "sizes": asdict(sizes),
                  "caches": {k: v[1] for k, v in caches.items()}}


def grids(run, sizes: Sizes, init: Path) -> tuple[list, list, list, dict[str, dict[str, Any] | None]]:
    """Seed 0 of the KD grid, then of the PKD grid at the best KD's (T, alpha): the grids, the chosen
    rows (best KD, best PKD; only once their grid has finished) and every grid record."""
    kd = kd_grid(sizes, init)
    grid_records = {s["name"]: run(s, 0) for s in kd}
    done = [n for n, r in grid_records.items() if r]
    if len(done) < len(kd):
        return kd, [], [], grid_records
    best_kd = next(s for s in kd if s["name"] == best_by(grid_records, done))
    values = best_kd["recipe"]["values"]
    pkd = pkd_grid(sizes, init, values["losses.kd.temperature"], values["losses.kd.weight"])
    pkd_records = {s["name"]: run(s, 0) for s in pkd}
    grid_records.update(pkd_records)
    chosen = [best_kd]
    if all(pkd_records.values()):
        chosen.append(next(s for s in pkd if s["name"] == best_by(pkd_records, list(pkd_records))))
    return kd, pkd, chosen, grid_records


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
    init = pretrained_layers(minilm(), out / "bert3-pretrained", 3)

    def run(spec: dict[str, Any], seed: int) -> dict[str, Any] | None:
        spec = seeded(spec, seed)
        if args.report:
            path = out / "students" / spec["run"] / "result.json"
            return json.loads(path.read_text()) if path.exists() else None
        return exp.run_student(spec)

    # seed 0 first (every row and both grids), then the other seeds of the chosen rows
    base_rows = lstm_rows(sizes) + [bert_spec("bert3-ce", {"losses": {"ce": {}}}, init, sizes, "CE only (no teacher)")]
    runs_of = {spec["name"]: [run(spec, 0)] for spec in base_rows}
    kd, pkd, chosen, grid_records = grids(run, sizes, init)
    runs_of.update({spec["name"]: [grid_records[spec["name"]]] for spec in chosen})
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
    run_timed(main)
