"""Evaluation, one module for every caller: the trainer's dev metrics and report, teacher
fine-tuning's per-epoch scores, and `pipelines/evaluate.py`, which scores saved models side by
side on one labelled dataset: students this project trained and any `from_pretrained` classifier
or tagger (a teacher), each with its own tokenizer. `dev_sets` reads and batches the data.

The task (`distill.tasks`) says what a metric compares: the argmax class, a regression model's
score (one output), or per sentence the tag names of its real words (at each first piece). A
student directory holds `student_config.json` and `task.json` (task, label names, max_length,
written by the trainer); a teacher's config names its labels (`id2label`) and task. Every model
is scored on the same rows: those every model's label space accepts (a label a model cannot
produce is refused in one line, as everywhere else).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from distill.common.columns import Columns
from distill.common.labels import LabelSpace
from distill.common.models import load_complete, resolve_model_dir
from distill.evaluate.dev_sets import read_dev_set
from distill.metrics import check_metrics, compute_metrics, default_metrics
from distill.tasks import get_task, teacher_task

log = logging.getLogger(__name__)
TASK_NAME = "task.json"  # beside a saved student: what it was trained for
DEFAULT_MAX_LENGTH = 128
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@torch.inference_mode()
def evaluate(model_fn: Callable[[dict[str, torch.Tensor]], torch.Tensor], batches, device: str,
             task: str = "classification", metrics: Sequence[str] = ("accuracy", "f1")) -> dict[str, float]:
    """`model_fn(tensors) -> logits` ([B, labels], or [B, W, labels] at word starts for a token dev
    set); returns {metric: value, ..., "examples_per_second": ...}."""
    kind, names = get_task(task), getattr(batches, "tag_names", None)
    predicted, gold, rows = [], [], 0
    started = time.perf_counter()
    for batch in batches:
        logits = model_fn({k: v.to(device) for k, v in batch.items() if k != "labels"})
        pred, expected = kind.scored(logits.cpu(), batch["labels"], names)
        predicted += pred
        gold += expected
        rows += len(batch["labels"])
    seconds = time.perf_counter() - started
    return {**compute_metrics(metrics, predicted, gold, task), "examples_per_second": rows / max(seconds, 1e-9)}


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def metrics_table(rows: dict[str, dict[str, Any]], metrics: Sequence[str]) -> str:
    """A Markdown table: one row per model, the metrics, then size and speed where known."""
    extra = [(key, title) for key, title in (("parameters", "parameters"), ("size_mb", "size (MB)"),
                                             ("examples_per_second", "examples/s"))
             if any(key in row for row in rows.values())]
    lines = ["| model | " + " | ".join([*(f"dev {m}" for m in metrics), *(t for _, t in extra)]) + " |",
             "|---|" + "---:|" * (len(metrics) + len(extra))]
    for name, row in rows.items():
        cells = [f"{row[m]:.4f}" if m in row else "-" for m in metrics]
        cells += [_cell(key, row.get(key)) for key, _ in extra]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "parameters":
        return f"{value:,}"
    return f"{value:.1f}" if key == "size_mb" else f"{value:.0f}"


@dataclass
class LoadedModel:
    name: str  # as the user gave it
    kind: str  # "student (<type>)" or "transformers (<architecture>)"
    task: str
    labels: LabelSpace
    max_length: int
    tokenizer: Any
    model: torch.nn.Module
    logits: Callable[[dict[str, torch.Tensor]], torch.Tensor]


def task_record(task: str, labels: LabelSpace, max_length: int) -> dict[str, Any]:
    """What the trainer writes to a student's `task.json`: enough to score it without its cache."""
    return {"task": task, "num_labels": labels.num_labels, "label2id": labels.label2id, "max_length": max_length}


def transformers_logits(model, task: str) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """A transformers model's logits on a dev batch; for token tasks at each word's first piece, like the students'."""
    kind = get_task(task)
    return lambda tensors: kind.forward(model, {k: v for k, v in tensors.items() if k in MODEL_INPUTS}, False,
                                        tensors)[0]


def load_model(name: str, device: str) -> LoadedModel:
    """A saved student (student_config.json) or a transformers sequence / token classifier (path or hub name)."""
    from transformers import AutoConfig, AutoTokenizer

    directory = resolve_model_dir(name)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    if (directory / "student_config.json").exists():
        from distill.students import load_student

        kind = json.loads((directory / "student_config.json").read_text())["student"]
        if not (directory / TASK_NAME).exists():
            raise FileNotFoundError(f"{directory}: a student saved without {TASK_NAME} (trained before task records); "
                                    "retrain it, or evaluate it with train_student.py --eval")
        record = json.loads((directory / TASK_NAME).read_text())
        student = load_student(directory).to(device).eval()
        labels = LabelSpace(int(record["num_labels"]), record.get("label2id"))
        return LoadedModel(name, f"student ({kind})", record["task"], labels, int(record["max_length"]), tokenizer,
                           student, lambda t: student(t).logits)
    config = AutoConfig.from_pretrained(directory)
    task = teacher_task(config.to_dict())
    model = load_complete(task.model_class(), directory).to(device).eval()
    max_length = min(int(getattr(tokenizer, "model_max_length", DEFAULT_MAX_LENGTH) or DEFAULT_MAX_LENGTH),
                     DEFAULT_MAX_LENGTH)
    labels = LabelSpace.from_config(config.to_dict())
    return LoadedModel(name, f"transformers ({type(model).__name__})", task.name, labels, max_length, tokenizer, model,
                       transformers_logits(model, task.name))


def _one_task(loaded: list[LoadedModel]) -> str:
    """The task every model shares, with one label space; else a ValueError naming each."""
    tasks = {m.task for m in loaded}
    if len(tasks) > 1:
        raise ValueError("models of different tasks cannot be compared: "
                         + ", ".join(f"{m.name} is {m.task}" for m in loaded))
    if len({m.labels.num_labels for m in loaded}) > 1:
        raise ValueError("models with different label spaces: " + ", ".join(f"{m.name}: {m.labels.describe()}"
                                                                         for m in loaded))
    return tasks.pop()


def evaluate_models(names: Sequence[str], data: str | Path, columns: Columns, metrics: Sequence[str] | None = None,
                    device: str = "cpu", batch_size: int = 128, max_length: int | None = None) -> dict[str, Any]:
    """{"models": {name: {metric: value, ..., parameters, examples_per_second}}, "task", "metrics", "data"}.

    All models must be of one task (a classifier and a regressor are not comparable); `metrics`
    default to the task's usual ones."""
    loaded = [load_model(name, device) for name in names]
    task = _one_task(loaded)
    chosen = check_metrics(metrics, task) if metrics else default_metrics(task, loaded[0].labels.num_labels)
    rows: dict[str, dict[str, Any]] = {}
    scored = None
    for model in loaded:
        dev = read_dev_set(data, columns, model.tokenizer, model.labels, task, max_length or model.max_length,
                           batch_size)
        scored = scored or dev
        values = evaluate(model.logits, dev, device, task, chosen)
        rows[model.name] = {**values, "kind": model.kind, "parameters": parameter_count(model.model),
                            "rows_scored": dev.rows}
        log.info("%s: %s", model.name, ", ".join(f"{k} {v:.4f}" for k, v in values.items() if k in chosen))
    return {"task": task, "metrics": chosen, "data": {"source": str(data), "rows_scored": scored.rows,
                                                      "rows_rejected": scored.rejected, "rejected": scored.reasons},
            "models": rows}
