"""Fine-tune a sequence classifier (or, with `columns.tokens`, a token classifier) on gold labels:
the project's own way to obtain a teacher.

Real users bring a fine-tuned teacher; the demo and the SST-2 experiment make one from a
pretrained encoder (offline: the MiniLM-L6 encoder). A plain PyTorch loop in the BERT paper's
recipe: AdamW, linear warm-up (10 %) and decay, lr 5e-5 for short runs, gradient clipping at
1.0, dynamic padding, bf16 autocast on GPU. The result is saved with `save_pretrained`
(safetensors) together with its tokenizer and `finetune.json` (config, label map, dev
accuracy); a rerun with the same inputs and config finds it and returns without training.
A token teacher learns each word's tag at its first piece (−100 elsewhere, as in BERT's CoNLL
setup); its `id2label` / `label2id` are the sorted tag set, and its dev accuracy is per word.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill.batching import length_grouped_batches
from distill.storage.atomic import write_json_atomic
from distill.common.config_io import (
    ConfigError, NonEmptyStr, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Probability, Seed,
    YamlConfig,
)
from distill.storage.fingerprint import fingerprint_json, hash_path, model_fingerprint
from distill.common.models import resolve_model_dir
from distill.common.text_inputs import Columns, read_text_table

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
    dev_rows: NonNegativeInt = 0  # hold out the last N valid rows for a dev accuracy (0 = none)
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


def accuracy(model, encoded, labels, batch_size: int, device: str) -> float:
    """Examples (or, for token tasks, words) whose argmax is the gold label."""
    model.eval()
    correct = scored = 0
    order = np.argsort([len(e["input_ids"]) for e in encoded], kind="stable")  # sorted: little padding
    batches = [order[i : i + 2 * batch_size] for i in range(0, len(order), 2 * batch_size)]
    with torch.inference_mode():
        for batch, gold in _tensors(encoded, labels, batches):
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
            real = gold != -100
            correct += int(((logits.argmax(-1).cpu() == gold) & real).sum())
            scored += int(real.sum())
    return correct / max(scored, 1)


def _fingerprinted(config: FinetuneConfig) -> dict[str, Any]:
    """The config as hashed: unset token columns left out, so teachers fine-tuned before token tasks still match."""
    data = dataclasses.asdict(config)
    for key in ("tokens", "tags"):
        if data["columns"].get(key) is None:
            data["columns"].pop(key, None)
    return data


def _examples(train_path, config: FinetuneConfig, tokenizer) -> tuple[list[dict], list[int], dict[Any, int]]:
    """Sequence task: encoded rows, class ids, and the label map."""
    text = read_text_table(train_path, config.columns)
    if text.rejects:
        log.warning("%d row(s) of %s rejected (first: %s)", len(text.rejects), train_path, text.rejects[0])
    labels_raw = text.table.column("label").to_pylist()
    if any(x is None for x in labels_raw):
        raise ConfigError(f"{train_path}: fine-tuning needs a gold label on every row")
    label_map = _label_map(labels_raw)
    texts_b = text.table.column("text_b").to_pylist() if config.columns.text_b else None
    encoded_all = tokenizer(text.table.column("text_a").to_pylist(), texts_b, truncation=True,
                            max_length=config.max_length, return_token_type_ids=True)
    encoded = [{k: encoded_all[k][i] for k in ("input_ids", "token_type_ids")} for i in range(len(labels_raw))]
    return encoded, [label_map[x] for x in labels_raw], label_map


def _tagged_examples(train_path, config: FinetuneConfig, tokenizer) -> tuple[list[dict], list[list[int]], dict[Any, int]]:
    """Token task: encoded rows, per-piece labels (the word's tag id at its first piece, −100
    elsewhere and at special tokens), and the tag map."""
    from distill.common.tagged_input import read_tagged
    from distill.words import align_words

    tagged = read_tagged(train_path, config.columns)
    if tagged.rejects:
        log.warning("%d row(s) of %s rejected (first: %s)", len(tagged.rejects), train_path, tagged.rejects[0])
    if not tagged.rows or any(t is None for t in tagged.tags or [None]):
        raise ConfigError(f"{train_path}: fine-tuning needs gold tags on every row")
    label_map = _label_map([t for row in tagged.tags for t in row])
    aligned = align_words(tokenizer, tagged.words, config.max_length, token_type_ids=True)
    if aligned.truncated:
        log.warning("%s: %d word(s) past max_length %d not learned", train_path, aligned.truncated, config.max_length)
    encoded, labels = [], []
    for i, (starts, kept) in enumerate(zip(aligned.word_starts, aligned.kept)):
        encoded.append({"input_ids": aligned.input_ids[i], "token_type_ids": aligned.token_type_ids[i]})
        row = [-100] * len(aligned.input_ids[i])
        for position, word in zip(starts, kept):
            row[position] = label_map[tagged.tags[i][word]]
        labels.append(row)
    return encoded, labels, label_map


def finetune(train_path: str | Path, output_dir: str | Path, config: FinetuneConfig) -> dict[str, Any]:
    """Fine-tune `config.base_model` on `train_path`; returns the saved `finetune.json` record."""
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer, get_linear_schedule_with_warmup

    from distill.common.models import model_class

    output_dir = Path(output_dir)
    base_dir = resolve_model_dir(config.base_model)
    fingerprint = fingerprint_json({"train": hash_path(train_path), "base": model_fingerprint(base_dir),
                                    "config": _fingerprinted(config)})
    record_path = output_dir / RECORD_NAME
    if record_path.exists():
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if record.get("fingerprint") == fingerprint:
            log.info("teacher at %s is already fine-tuned for these inputs (dev acc %s)", output_dir, record["dev_accuracy"])
            return record
    started = time.perf_counter()
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    tokens = bool(config.columns.tokens)
    encoded, labels, label_map = (_tagged_examples if tokens else _examples)(train_path, config, tokenizer)
    split = len(encoded) - config.dev_rows
    train, dev = (encoded[:split], labels[:split]), (encoded[split:], labels[split:])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model_class("token_classification" if tokens else "classification").from_pretrained(
        base_dir, num_labels=len(label_map),
        id2label={i: str(x) for x, i in label_map.items()}, label2id={str(x): i for x, i in label_map.items()},
    ).to(device)
    steps = int(np.ceil(len(train[0]) / config.batch_size) * config.epochs)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": config.weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate)
    schedule = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * steps), steps)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)
    step, epoch, progress = 0, 0, tqdm(total=steps, desc="fine-tune teacher", unit="step")
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
    progress.close()
    dev_accuracy = accuracy(model, dev[0], dev[1], config.batch_size, device) if dev[0] else None
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    record = {
        "fingerprint": fingerprint,
        "train": str(train_path),
        "train_rows": len(train[0]),
        "dev_rows": len(dev[0]),
        "dev_accuracy": dev_accuracy,
        "train_accuracy": accuracy(model, train[0][:2000], train[1][:2000], config.batch_size, device),
        "label_map": {str(k): v for k, v in label_map.items()},
        "task": "token_classification" if tokens else "sequence_classification",
        "steps": steps,
        "seconds": round(time.perf_counter() - started, 1),
        "config": dataclasses.asdict(config),
    }
    write_json_atomic(record_path, record)  # written last: its presence means the teacher is complete
    log.info("fine-tuned %s on %d rows in %.0fs: dev accuracy %s", config.base_model, len(train[0]), record["seconds"], dev_accuracy)
    return record
