"""Fine-tune a sequence classifier, a one-output regressor or (with `columns.tokens`) a token
classifier on gold labels: the project's own way to obtain a teacher.

Real users bring a fine-tuned teacher; the demo and the SST-2 experiment make one from a
pretrained encoder (offline: the MiniLM-L6 encoder). The training engine (`distill.train.engine`)
with the BERT paper's recipe and a cross-entropy (MSE for regression) objective on the gold
labels: AdamW, linear warm-up (10 %) and decay, lr 5e-5 for short runs, gradient clipping at 1.0,
dynamic padding, bf16 autocast on GPU. The result is saved with `save_pretrained` (safetensors)
together with its tokenizer and `finetune.json` (config, label map, dev metrics per epoch); a
rerun with the same inputs and config finds it and returns without training.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from distill.common.batching import encoder_inputs, pad_rows
from distill.common.columns import Columns
from distill.common.config_io import (
    ConfigError, NonEmptyStr, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Probability, Seed,
    YamlConfig,
)
from distill.common.hardware import worker_device
from distill.common.inputs.source import input_identity
from distill.common.inputs.text import read_text_table
from distill.common.inputs.tokens import is_token_task
from distill.common.models import resolve_model_dir
from distill.evaluate import evaluate
from distill.evaluate.dev_sets import DevSet, sorted_batches
from distill.storage.atomic import write_json_atomic
from distill.storage.fingerprint import fingerprint_json, model_fingerprint
from distill.storage.lock import OutputLock
from distill.tasks import get_task
from distill.train.data import EpochBatches
from distill.train.engine import Engine, Phase, Recipe, Settings

log = logging.getLogger(__name__)
RECORD_NAME = "finetune.json"
EVAL_ROWS = 2000  # the record's train metrics: on the first rows of the training set
NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight")


@dataclass
class FinetuneConfig(YamlConfig):
    base_model: NonEmptyStr = "bert-base-uncased"  # any encoder; a (token) classification head is added
    columns: Columns = field(default_factory=Columns)
    epochs: PositiveFloat = 3.0  # BERT paper: 2-4 epochs for GLUE
    learning_rate: PositiveFloat = 5e-5  # BERT paper grid {2e-5, 3e-5, 5e-5}
    batch_size: PositiveInt = 32
    group_by_length: bool = True  # batches of similar-length rows: 2.9x fewer padded tokens on SST-2
    max_length: PositiveInt = 128
    warmup_ratio: Probability = 0.1
    weight_decay: NonNegativeFloat = 0.01
    dev_rows: NonNegativeInt = 0  # hold out the last N valid rows for dev metrics (0 = none)
    # with a dev set (dev_rows or an eval file): keep the epoch with the best dev headline metric
    # (accuracy; Pearson for regression) instead of the last; every epoch's dev metrics are recorded
    keep_best: bool = False
    # classification (num_labels = the distinct labels), regression (one output, MSE: STS-B),
    # token_classification (NER: a tag per word), or auto: token_classification with
    # columns.tokens, else regression when the labels are floats, else classification
    task: Literal["auto", "classification", "regression", "token_classification"] = "auto"
    seed: Seed = 0


def _label_map(labels: list) -> dict[Any, int]:
    """Integer labels 0..C-1 map to themselves; anything else to sorted ids."""
    distinct = sorted(set(labels), key=str)
    if all(isinstance(x, int) for x in distinct) and distinct == list(range(len(distinct))):
        return {x: x for x in distinct}
    return {x: i for i, x in enumerate(distinct)}


def _sequence_task(config: FinetuneConfig, labels: list) -> str:
    if config.task != "auto":
        return config.task
    return "regression" if any(isinstance(x, float) for x in labels) else "classification"


def _fingerprinted(config: FinetuneConfig) -> dict[str, Any]:
    """The config as hashed, options added later left out at their defaults (token columns, input
    format, task), so teachers fine-tuned before them still match."""
    data = dataclasses.asdict(config)
    for key, default in (("tokens", None), ("tags", None), ("format", "auto")):
        if data["columns"].get(key) == default:
            data["columns"].pop(key, None)
    if data["task"] == "auto":
        data.pop("task")
    if not data["keep_best"]:
        data.pop("keep_best")
    return data


def _mapped(path, label_map: dict[Any, int], label) -> int:
    """A label through the training set's label map, or a one-line refusal."""
    if label not in label_map:
        known = ", ".join(map(str, label_map))
        raise ConfigError(f"{path}: label {label!r} is not among the training labels ({known})")
    return label_map[label]


def _checked(path, rows, rejects) -> None:
    if rejects:
        log.warning("%d row(s) of %s rejected (first: %s)", len(rejects), path, rejects[0])
    if not rows or any(x is None for x in rows):
        raise ConfigError(f"{path}: fine-tuning needs a gold label on every row")


def _sentences(path, config: FinetuneConfig, tokenizer, label_map: dict[Any, int] | None,
               task: str | None) -> tuple[list[dict], list, dict[Any, int], str]:
    """Sequence task: encoded rows, class ids (or float scores), the label map, and the task. A dev
    file gets the training set's `label_map` and `task`."""
    text = read_text_table(path, config.columns)
    raw = text.table.column("label").to_pylist()
    _checked(path, raw, text.rejects)
    task = task or _sequence_task(config, raw)
    if get_task(task).scores:
        bad = next((i for i, x in enumerate(raw) if isinstance(x, str)), None)
        if bad is not None:
            raise ConfigError(f"{path}: row {text.table.column('row')[bad].as_py()}: label {raw[bad]!r} "
                              "is not a number (task: regression)")
        label_map, labels = {}, [float(x) for x in raw]
    else:
        label_map = label_map if label_map is not None else _label_map(raw)
        labels = [_mapped(path, label_map, x) for x in raw]
    texts_b = text.table.column("text_b").to_pylist() if config.columns.text_b else None
    encoded = tokenizer(text.table.column("text_a").to_pylist(), texts_b, truncation=True,
                        max_length=config.max_length, return_token_type_ids=True)
    rows = [{k: encoded[k][i] for k in ("input_ids", "token_type_ids")} for i in range(len(labels))]
    return rows, labels, label_map, task


def _words(path, config: FinetuneConfig, tokenizer, label_map: dict[Any, int] | None,
           task: str | None) -> tuple[list[dict], list[list], dict[Any, int], str]:
    """Token task: encoded rows, per-piece labels (the word's tag id at its first piece, −100
    elsewhere and at special tokens), the tag map, and the task."""
    from distill.common.inputs.tokens import read_tagged
    from distill.words import align_words

    tagged = read_tagged(path, config.columns)
    _checked(path, tagged.tags, tagged.rejects)
    label_map = label_map if label_map is not None else _label_map([t for row in tagged.tags for t in row])
    aligned = align_words(tokenizer, tagged.words, config.max_length, token_type_ids=True)
    if aligned.truncated:
        log.warning("%s: %d word(s) past max_length %d not learned", path, aligned.truncated, config.max_length)
    rows, labels = [], []
    for i, (starts, kept) in enumerate(zip(aligned.word_starts, aligned.kept)):
        rows.append({"input_ids": aligned.input_ids[i], "token_type_ids": aligned.token_type_ids[i]})
        labels.append([-100] * len(aligned.input_ids[i]))
        for position, word in zip(starts, kept):
            labels[-1][position] = _mapped(path, label_map, tagged.tags[i][word])
    return rows, labels, label_map, "token_classification"


def _metric_names(task: str, num_labels: int) -> list[str]:
    """The task's usual metrics; token tasks per-word accuracy (entity F1 needs whole sentences:
    pipelines/evaluate.py)."""
    kind = get_task(task)
    return ["token_accuracy"] if kind.words else kind.default_metrics(num_labels)


def _tensors(encoded: list[dict], labels: list, batches):
    """(inputs, gold) per batch of row indices: zero-padded ids, and for token tasks per-piece labels
    (−100 past each row's end)."""
    for rows in batches:
        batch = encoder_inputs([encoded[r]["input_ids"] for r in rows], 0, [encoded[r]["token_type_ids"] for r in rows])
        if isinstance(labels[rows[0]], list):
            yield batch, pad_rows([labels[r] for r in rows], -100)
        else:
            yield batch, torch.tensor([labels[r] for r in rows])


class FinetuneRecipe(Recipe):
    """Fine-tuning on the training engine: the model's own loss (cross-entropy, MSE for regression) on gold labels."""

    def __init__(self, model, config: FinetuneConfig, train: tuple[list, list], dev: tuple[list, list], task: str,
                 device: str) -> None:
        self.model, self.config, self.train, self.dev, self.task, self.device = model, config, train, dev, task, device
        self.has_dev = bool(dev[1])
        self.kept: dict[str, torch.Tensor] | None = None  # keep_best: the best epoch's weights, on the CPU
        self.lengths = np.array([len(e["input_ids"]) for e in train[0]]) if config.group_by_length else None

    def phase(self) -> Phase:
        c = self.config
        per_epoch = np.ceil(len(self.train[0]) / c.batch_size)
        total = int(per_epoch * c.epochs)
        return Phase("fine-tune teacher", total, int(per_epoch), c.learning_rate, int(c.warmup_ratio * total),
                     c.weight_decay, watch=c.keep_best and self.has_dev)

    def metrics(self, rows: tuple[list, list]) -> dict[str, float]:
        """The task's `_metric_names` on `rows`; {} when there are none."""
        if not rows[1]:
            return {}
        self.model.eval()
        names = [str(i) for i in range(self.model.config.num_labels)]
        batches = _tensors(*rows, sorted_batches([len(e["input_ids"]) for e in rows[0]], 2 * self.config.batch_size))
        dev = DevSet("", [{**b, "labels": g} for b, g in batches], len(rows[1]), tag_names=names)
        metrics = _metric_names(self.task, len(names))
        values = evaluate(lambda t: self.model(**t).logits, dev, self.device, self.task, metrics)
        return {k: v for k, v in values.items() if k in metrics}

    def parameters(self) -> list[dict[str, Any]]:
        named = list(self.model.named_parameters())
        return [{"params": [p for n, p in named if not n.endswith(NO_DECAY)], "weight_decay": self.config.weight_decay},
                {"params": [p for n, p in named if n.endswith(NO_DECAY)], "weight_decay": 0.0}]

    def batches(self, phase: Phase, epoch: int, start: int):
        c = self.config
        return _tensors(*self.train, EpochBatches(len(self.train[0]), c.batch_size, c.seed, epoch, start, self.lengths))

    def prepare(self, batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        inputs, gold = batch
        return {k: v.to(self.device) for k, v in inputs.items()}, gold.to(self.device)

    def loss(self, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inputs, gold = batch
        return self.model(**inputs, labels=gold).loss, {}

    def evaluate(self) -> dict[str, float]:
        return self.metrics(self.dev)

    def save_best(self) -> None:
        self.kept = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}


def _fingerprint(train_path, config: FinetuneConfig, dev_path, base_dir: Path) -> str:
    identity = {"train": input_identity(train_path, config.columns.split, config.columns)["fingerprint"],
                "base": model_fingerprint(base_dir), "config": _fingerprinted(config)}
    if dev_path is not None:
        if config.dev_rows:
            raise ConfigError("give a dev file or dev_rows, not both", "dev_rows")
        identity["dev"] = input_identity(dev_path, config.columns.split, config.columns)["fingerprint"]
    return fingerprint_json(identity)


def _finished(record_path: Path, fingerprint: str) -> dict[str, Any] | None:
    """The record of a teacher already fine-tuned on these inputs, else None."""
    record = json.loads(record_path.read_text(encoding="utf-8")) if record_path.exists() else None
    if record is None or record.get("fingerprint") != fingerprint:
        return None
    log.info("teacher at %s is already fine-tuned for these inputs (dev %s)", record_path.parent,
             record.get("dev_metrics", record.get("dev_accuracy")))
    return record


def _read(train_path, dev_path, config: FinetuneConfig, tokenizer):
    """Training rows, dev rows (the last `dev_rows`, or `dev_path` through the training label map),
    the label map and the task."""
    tokens = config.task == "token_classification" or is_token_task(train_path, config.columns)  # CoNLL: a tagger
    read = _words if tokens else _sentences
    encoded, labels, label_map, task = read(train_path, config, tokenizer, None, None)
    split = len(encoded) - config.dev_rows
    train, dev = (encoded[:split], labels[:split]), (encoded[split:], labels[split:])
    if dev_path is not None:
        dev = read(dev_path, config, tokenizer, label_map, task)[:2]
    return train, dev, label_map, task


def _model(base_dir: Path, task: str, label_map: dict[Any, int], device: str):
    """The base encoder with a new head for `task`, its labels named after the training set's."""
    kind = get_task(task)
    head = {"num_labels": 1} if kind.scores else {
        "num_labels": len(label_map), "id2label": {i: str(x) for x, i in label_map.items()},
        "label2id": {str(x): i for x, i in label_map.items()}}
    if kind.problem_type:
        head["problem_type"] = kind.problem_type
    return kind.model_class().from_pretrained(base_dir, **head).to(device)


def finetune(train_path: str | Path, output_dir: str | Path, config: FinetuneConfig,
             dev_path: str | Path | None = None) -> dict[str, Any]:
    """Fine-tune `config.base_model` on `train_path`; returns the saved `finetune.json` record.
    `dev_path` (same columns): the dev set, instead of the last `dev_rows` training rows."""
    output_dir, base_dir = Path(output_dir), resolve_model_dir(config.base_model)
    fingerprint = _fingerprint(train_path, config, dev_path, base_dir)
    with OutputLock(output_dir):  # one writer per output directory, as for the stages
        done = _finished(output_dir / RECORD_NAME, fingerprint)
        return done if done is not None else _finetune(train_path, output_dir, config, dev_path, base_dir, fingerprint)


def _finetune(train_path, output_dir: Path, config: FinetuneConfig, dev_path, base_dir: Path,
              fingerprint: str) -> dict[str, Any]:
    from transformers import AutoTokenizer, set_seed

    started = time.perf_counter()
    set_seed(config.seed)  # python, numpy and torch
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    train, dev, label_map, task = _read(train_path, dev_path, config, tokenizer)
    device = worker_device()
    recipe = FinetuneRecipe(_model(base_dir, task, label_map, device), config, train, dev, task, device)
    if config.keep_best and not recipe.has_dev:
        log.warning("keep_best needs a dev set (dev_rows or --eval): the last epoch is kept")
    headline = _metric_names(task, recipe.model.config.num_labels)[0]
    engine = Engine(recipe, Settings(device, log_every=1, metric=headline))
    engine.fit([recipe.phase()])
    record = _record(recipe, engine, fingerprint, train_path, dev_path, label_map)
    recipe.model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    record["seconds"] = round(time.perf_counter() - started, 1)
    write_json_atomic(output_dir / RECORD_NAME, record)  # written last: its presence means the teacher is complete
    log.info("fine-tuned %s (%s) on %d rows in %.0fs: dev %s", config.base_model, task, len(train[0]),
             record["seconds"], record["dev_metrics"] or "not held out")
    return record


def _record(recipe: FinetuneRecipe, engine: Engine, fingerprint: str, train_path, dev_path,
            label_map: dict[Any, int]) -> dict[str, Any]:
    """`finetune.json` (all but `seconds`), once the best epoch's weights (keep_best) are back in the model."""
    epochs = [{"epoch": e["epoch"] + 1, "step": e["step"], "dev_metrics": e["metrics"]} for e in engine.evaluations]
    best = engine.state.get("best") if recipe.kept is not None else None
    if best is not None:
        recipe.model.load_state_dict(recipe.kept)
        best_epoch = next(e["epoch"] for e in epochs if e["step"] == best["step"])
        log.info("keeping epoch %d of %d (best dev %s %.4f)", best_epoch, len(epochs), best["metric"], best["value"])
    dev_metrics = best["metrics"] if best is not None else (epochs[-1]["dev_metrics"] if epochs else {})
    train_metrics = recipe.metrics((recipe.train[0][:EVAL_ROWS], recipe.train[1][:EVAL_ROWS]))
    return {
        "fingerprint": fingerprint, "train": str(train_path), "train_rows": len(recipe.train[0]),
        "dev_rows": len(recipe.dev[0]), "dev": str(dev_path) if dev_path is not None else None,
        "epochs": epochs,  # dev metrics after each epoch
        "best_epoch": best_epoch if best is not None else None,  # keep_best: the epoch whose weights were saved
        "task": recipe.task, "dev_metrics": dev_metrics,
        "train_metrics": train_metrics,  # on the first EVAL_ROWS training rows
        "dev_accuracy": dev_metrics.get("accuracy", dev_metrics.get("token_accuracy")),  # per word for token tasks
        "train_accuracy": train_metrics.get("accuracy", train_metrics.get("token_accuracy")),
        "label_map": {str(k): v for k, v in label_map.items()}, "steps": recipe.phase().total,
        "seconds": None, "config": dataclasses.asdict(recipe.config),
    }
