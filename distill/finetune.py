"""Fine-tune a sequence classifier, a one-output regressor or (with `columns.tokens`) a token
classifier on gold labels: the project's own way to obtain a teacher.

Real users bring a fine-tuned teacher; the demo and the SST-2 experiment make one from a
pretrained encoder (offline: the MiniLM-L6 encoder). A plain PyTorch loop in the BERT paper's
recipe: AdamW, linear warm-up (10 %) and decay, lr 5e-5 for short runs, gradient clipping at
1.0, dynamic padding, bf16 autocast on GPU. The result is saved with `save_pretrained`
(safetensors) together with its tokenizer and `finetune.json` (config, label map, dev
accuracy); a rerun with the same inputs and config finds it and returns without training.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from distill.batching import length_grouped_batches
from distill.storage.atomic import write_json_atomic
from distill.common.config_io import (
    ConfigError, NonEmptyStr, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Probability, Seed,
    YamlConfig,
)
from distill.metrics import compute_metrics, default_metrics, improves
from distill.storage.fingerprint import fingerprint_json, model_fingerprint
from distill.common.models import model_class, resolve_model_dir
from distill.common.progress import progress_bar
from distill.common.text_inputs import Columns, input_identity, read_text_table
from distill.common.token_inputs import is_token_task
from distill.train.evaluate import predictions_of

log = logging.getLogger(__name__)
RECORD_NAME = "finetune.json"


@dataclass
class FinetuneConfig(YamlConfig):
    base_model: NonEmptyStr = "bert-base-uncased"  # any encoder; a classification (or token-classification) head is added
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

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "learning_rate"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{getattr(self, name)!r} must be > 0", name)



def _label_map(labels: list) -> dict[Any, int]:
    """Integer labels 0..C-1 map to themselves; anything else to sorted ids."""
    distinct = sorted(set(labels), key=str)
    if all(isinstance(x, int) for x in distinct) and distinct == list(range(len(distinct))):
        return {x: x for x in distinct}
    return {x: i for i, x in enumerate(distinct)}


def _epoch_batches(encoded: list[dict], batch_size: int, seed: int, epoch: int, group_by_length: bool) -> list[np.ndarray]:
    rng = np.random.default_rng([seed, epoch])
    if group_by_length:
        return length_grouped_batches(np.array([len(e["input_ids"]) for e in encoded]), batch_size, rng)
    order = rng.permutation(len(encoded))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _tensors(encoded: list[dict], labels: list[int], batches: list[np.ndarray]):
    for rows in batches:
        width = max(len(encoded[r]["input_ids"]) for r in rows)
        batch = {key: torch.zeros(len(rows), width, dtype=torch.long) for key in ("input_ids", "attention_mask", "token_type_ids")}
        for i, r in enumerate(rows):
            for key in batch:
                values = encoded[r][key] if key != "attention_mask" else [1] * len(encoded[r]["input_ids"])
                batch[key][i, : len(values)] = torch.tensor(values)
        if isinstance(labels[rows[0]], list):  # token task: per-piece labels, -100 past each row's end
            gold = torch.full((len(rows), width), -100, dtype=torch.long)
            for i, r in enumerate(rows):
                gold[i, : len(labels[r])] = torch.tensor(labels[r])
            yield batch, gold
        else:
            yield batch, torch.tensor([labels[r] for r in rows])


def _eval_batches(encoded: list[dict], batch_size: int) -> list[np.ndarray]:
    """Row indices for evaluation: sorted by length (little padding), twice the training batch."""
    order = np.argsort([len(e["input_ids"]) for e in encoded], kind="stable")
    return [order[i : i + 2 * batch_size] for i in range(0, len(order), 2 * batch_size)]


@torch.inference_mode()
def predict(model, encoded, batch_size: int, device: str, task: str) -> np.ndarray:
    """Predicted classes (or regression scores) of `encoded`, in input order."""
    model.eval()
    batches = _eval_batches(encoded, batch_size)
    out = np.zeros(len(encoded), dtype=np.float64 if task == "regression" else np.int64)
    for rows, (batch, _) in zip(batches, _tensors(encoded, [0] * len(encoded), batches)):
        logits = model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu()
        out[rows] = predictions_of(logits, task).numpy()
    return out


@torch.inference_mode()
def word_accuracy(model, encoded, labels, batch_size: int, device: str) -> float:
    """Token tasks: the share of scored words (first pieces) whose argmax is the gold tag."""
    model.eval()
    correct = scored = 0
    for batch, gold in _tensors(encoded, labels, _eval_batches(encoded, batch_size)):
        logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
        real = gold != -100
        correct += int(((logits.argmax(-1).cpu() == gold) & real).sum())
        scored += int(real.sum())
    return correct / max(scored, 1)


def task_metrics(model, encoded, labels, batch_size: int, device: str, task: str, num_labels: int) -> dict[str, float]:
    """The task's usual metrics (`distill.metrics.default_metrics`) on `encoded`; {} when empty.
    Token tasks: per-word accuracy (entity F1 needs whole sentences: pipelines/evaluate.py)."""
    if not labels:
        return {}
    if task == "token_classification":
        return {"token_accuracy": word_accuracy(model, encoded, labels, batch_size, device)}
    return compute_metrics(default_metrics(task, num_labels), predict(model, encoded, batch_size, device, task),
                           np.asarray(labels), task)


def _task(config: FinetuneConfig, labels: list) -> str:
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
    """A dev row's label through the training set's label map, or a one-line refusal."""
    if label not in label_map:
        raise ConfigError(f"{path}: label {label!r} is not among the training labels ({', '.join(map(str, label_map))})")
    return label_map[label]


def _examples(train_path, config: FinetuneConfig, tokenizer,
              label_map: dict[Any, int] | None = None) -> tuple[list[dict], list, dict[Any, int], str]:
    """Sequence task: encoded rows, class ids (or float scores), the label map, and the task.
    `label_map` (a dev file): the training set's map and task, instead of this file's own."""
    text = read_text_table(train_path, config.columns)
    if text.rejects:
        log.warning("%d row(s) of %s rejected (first: %s)", len(text.rejects), train_path, text.rejects[0])
    labels_raw = text.table.column("label").to_pylist()
    if any(x is None for x in labels_raw):
        raise ConfigError(f"{train_path}: fine-tuning needs a gold label on every row")
    task = _task(config, labels_raw)
    if task == "regression":
        bad = next((i for i, x in enumerate(labels_raw) if isinstance(x, str)), None)
        if bad is not None:
            raise ConfigError(f"{train_path}: row {text.table.column('row')[bad].as_py()}: label {labels_raw[bad]!r} "
                              "is not a number (task: regression)")
        label_map = {}
    elif label_map is None:
        label_map = _label_map(labels_raw)
    texts_b = text.table.column("text_b").to_pylist() if config.columns.text_b else None
    encoded_all = tokenizer(text.table.column("text_a").to_pylist(), texts_b, truncation=True,
                            max_length=config.max_length, return_token_type_ids=True)
    encoded = [{k: encoded_all[k][i] for k in ("input_ids", "token_type_ids")} for i in range(len(labels_raw))]
    labels = [float(x) for x in labels_raw] if task == "regression" else [_mapped(train_path, label_map, x)
                                                                          for x in labels_raw]
    return encoded, labels, label_map, task


def _tagged_examples(train_path, config: FinetuneConfig, tokenizer,
                     label_map: dict[Any, int] | None = None) -> tuple[list[dict], list[list[int]], dict[Any, int], str]:
    """Token task: encoded rows, per-piece labels (the word's tag id at its first piece, −100
    elsewhere and at special tokens), the tag map, and the task."""
    from distill.common.tagged_input import read_tagged
    from distill.words import align_words

    tagged = read_tagged(train_path, config.columns)
    if tagged.rejects:
        log.warning("%d row(s) of %s rejected (first: %s)", len(tagged.rejects), train_path, tagged.rejects[0])
    if not tagged.rows or any(t is None for t in tagged.tags or [None]):
        raise ConfigError(f"{train_path}: fine-tuning needs gold tags on every row")
    label_map = label_map if label_map is not None else _label_map([t for row in tagged.tags for t in row])
    aligned = align_words(tokenizer, tagged.words, config.max_length, token_type_ids=True)
    if aligned.truncated:
        log.warning("%s: %d word(s) past max_length %d not learned", train_path, aligned.truncated, config.max_length)
    encoded, labels = [], []
    for i, (starts, kept) in enumerate(zip(aligned.word_starts, aligned.kept)):
        encoded.append({"input_ids": aligned.input_ids[i], "token_type_ids": aligned.token_type_ids[i]})
        row = [-100] * len(aligned.input_ids[i])
        for position, word in zip(starts, kept):
            row[position] = _mapped(train_path, label_map, tagged.tags[i][word])
        labels.append(row)
    return encoded, labels, label_map, "token_classification"


def finetune(train_path: str | Path, output_dir: str | Path, config: FinetuneConfig,
             dev_path: str | Path | None = None) -> dict[str, Any]:
    """Fine-tune `config.base_model` on `train_path`; returns the saved `finetune.json` record.
    `dev_path` (same columns): the dev set, instead of the last `dev_rows` training rows."""
    from transformers import AutoTokenizer, get_linear_schedule_with_warmup

    output_dir = Path(output_dir)
    base_dir = resolve_model_dir(config.base_model)
    train_fingerprint = input_identity(train_path, config.columns.split, config.columns)["fingerprint"]
    identity = {"train": train_fingerprint, "base": model_fingerprint(base_dir), "config": _fingerprinted(config)}
    if dev_path is not None:
        if config.dev_rows:
            raise ConfigError("give a dev file or dev_rows, not both", "dev_rows")
        identity["dev"] = input_identity(dev_path, config.columns.split, config.columns)["fingerprint"]
    fingerprint = fingerprint_json(identity)
    record_path = output_dir / RECORD_NAME
    if record_path.exists():
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if record.get("fingerprint") == fingerprint:
            log.info("teacher at %s is already fine-tuned for these inputs (dev %s)", output_dir,
                     record.get("dev_metrics", record.get("dev_accuracy")))
            return record
    started = time.perf_counter()
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    tokens = config.task == "token_classification" or is_token_task(train_path, config.columns)  # CoNLL: a tagger
    read = _tagged_examples if tokens else _examples
    encoded, labels, label_map, task = read(train_path, config, tokenizer)
    split = len(encoded) - config.dev_rows
    train, dev = (encoded[:split], labels[:split]), (encoded[split:], labels[split:])
    if dev_path is not None:
        dev_encoded, dev_labels, _, _ = read(dev_path, config, tokenizer, label_map)
        dev = (dev_encoded, dev_labels)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    head = {"num_labels": 1, "problem_type": "regression"} if task == "regression" else {
        "num_labels": len(label_map), "id2label": {i: str(x) for x, i in label_map.items()},
        "label2id": {str(x): i for x, i in label_map.items()}}
    if task == "classification":
        head["problem_type"] = "single_label_classification"
    model = model_class("token_classification" if tokens else "classification").from_pretrained(base_dir, **head).to(device)
    steps = int(np.ceil(len(train[0]) / config.batch_size) * config.epochs)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": config.weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate)
    schedule = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * steps), steps)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)
    step, epoch, progress = 0, 0, progress_bar(steps, "fine-tune teacher", "step")
    num_labels = model.config.num_labels
    headline = default_metrics(task, num_labels)[0] if task != "token_classification" else "token_accuracy"
    epochs_seen, best = [], None  # per-epoch dev metrics; the best epoch's weights (keep_best), on the CPU
    if config.keep_best and not dev[1]:
        log.warning("keep_best needs a dev set (dev_rows or --eval): the last epoch is kept")
    while step < steps:
        model.train()
        batches = _epoch_batches(train[0], config.batch_size, config.seed, epoch, config.group_by_length)
        epoch += 1
        for batch, gold in _tensors(train[0], train[1], batches):
            with autocast:
                loss = model(**{k: v.to(device) for k, v in batch.items()}, labels=gold.to(device)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.3f}")
            if step >= steps:
                break
        if dev[1]:  # each epoch's dev score: the record shows when the teacher peaked
            epoch_metrics = task_metrics(model, dev[0], dev[1], config.batch_size, device, task, num_labels)
            epochs_seen.append({"epoch": epoch, "step": step, "dev_metrics": epoch_metrics})
            log.info("epoch %d (step %d): dev %s", epoch, step, epoch_metrics)
            if config.keep_best and improves(headline, epoch_metrics[headline], best and best[0][headline]):
                best = (epoch_metrics, epoch, {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
    progress.close()
    if best is not None:
        model.load_state_dict(best[2])
        log.info("keeping epoch %d of %d (best dev %s %.4f)", best[1], epoch, headline, best[0][headline])
    dev_metrics = best[0] if best is not None else (epochs_seen[-1]["dev_metrics"] if epochs_seen else {})
    train_metrics = task_metrics(model, train[0][:2000], train[1][:2000], config.batch_size, device, task, num_labels)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    record = {
        "fingerprint": fingerprint,
        "train": str(train_path),
        "train_rows": len(train[0]),
        "dev_rows": len(dev[0]),
        "dev": str(dev_path) if dev_path is not None else None,
        "epochs": epochs_seen,  # dev metrics after each epoch
        "best_epoch": best[1] if best is not None else None,  # keep_best: the epoch whose weights were saved
        "task": task,
        "dev_metrics": dev_metrics,
        "train_metrics": train_metrics,  # on the first 2,000 training rows
        "dev_accuracy": dev_metrics.get("accuracy", dev_metrics.get("token_accuracy")),  # per word for token tasks
        "train_accuracy": train_metrics.get("accuracy", train_metrics.get("token_accuracy")),
        "label_map": {str(k): v for k, v in label_map.items()},
        "steps": steps,
        "seconds": round(time.perf_counter() - started, 1),
        "config": dataclasses.asdict(config),
    }
    write_json_atomic(record_path, record)  # written last: its presence means the teacher is complete
    log.info("fine-tuned %s (%s) on %d rows in %.0fs: dev %s", config.base_model, task, len(train[0]), record["seconds"],
             dev_metrics or "not held out")
    return record
