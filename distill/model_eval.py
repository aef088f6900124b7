"""Score saved models side by side on one labelled dataset: students this project trained and any
`from_pretrained` classifier or tagger (a teacher), each with its own tokenizer, with the task's
metrics (token tasks: per sentence, at each word's first piece, by tag name).

A student directory holds `student_config.json` and `task.json` (task, label names, max_length,
written by the trainer); a teacher directory is a transformers classifier whose config names its
labels (`id2label`) and task (`problem_type`, `num_labels`). Every model is scored on the same
rows: the labelled rows every model's label space accepts (a label a model cannot produce is
refused in one line, as everywhere else).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from distill.common.labels import LabelSpace
from distill.common.models import resolve_model_dir
from distill.common.text_inputs import Columns
from distill.metrics import check_metrics, default_metrics
from distill.train.data import dev_batches, token_dev_batches
from distill.train.evaluate import evaluate, parameter_count

log = logging.getLogger(__name__)
TASK_NAME = "task.json"  # beside a saved student: what it was trained for
DEFAULT_MAX_LENGTH = 128


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


def _task_of_config(config) -> str:
    architectures = " ".join(getattr(config, "architectures", None) or [])
    if "TokenClassification" in architectures:
        return "token_classification"
    if config.problem_type == "regression" or config.num_labels == 1:
        return "regression"
    return "classification"


def load_model(name: str, device: str) -> LoadedModel:
    """A saved student (student_config.json) or a transformers sequence / token classifier (path or hub name)."""
    from transformers import AutoConfig, AutoTokenizer

    from distill.common.models import model_class
    from distill.train.report import teacher_logits

    directory = resolve_model_dir(name)
    if (directory / "student_config.json").exists():
        from distill.students import load_student

        kind = json.loads((directory / "student_config.json").read_text())["student"]
        if not (directory / TASK_NAME).exists():
            raise FileNotFoundError(f"{directory}: a student saved without {TASK_NAME} (trained before task records); "
                                    "retrain it, or evaluate it with train_student.py --eval")
        record = json.loads((directory / TASK_NAME).read_text())
        student = load_student(directory).to(device).eval()
        labels = LabelSpace(int(record["num_labels"]), record.get("label2id"))
        return LoadedModel(name, f"student ({kind})", record["task"], labels, int(record["max_length"]),
                           AutoTokenizer.from_pretrained(directory), student, lambda t: student(t).logits)
    config = AutoConfig.from_pretrained(directory)
    task = _task_of_config(config)
    head = "token_classification" if task == "token_classification" else "classification"
    model = model_class(head).from_pretrained(directory).to(device).eval()
    labels = LabelSpace.from_config(config.to_dict())
    tokenizer = AutoTokenizer.from_pretrained(directory)
    max_length = min(int(getattr(tokenizer, "model_max_length", DEFAULT_MAX_LENGTH) or DEFAULT_MAX_LENGTH),
                     DEFAULT_MAX_LENGTH)
    return LoadedModel(name, f"transformers ({type(model).__name__})", task, labels, max_length, tokenizer, model,
                       lambda t: teacher_logits(model, t))


def evaluate_models(names: Sequence[str], data: str | Path, columns: Columns, metrics: Sequence[str] | None = None,
                    device: str = "cpu", batch_size: int = 128, max_length: int | None = None) -> dict[str, Any]:
    """{"models": {name: {metric: value, ..., parameters, examples_per_second}}, "task", "metrics", "data"}.

    All models must be of one task (a classifier and a regressor are not comparable); `metrics`
    default to the task's usual ones."""
    loaded = [load_model(name, device) for name in names]
    tasks = {m.task for m in loaded}
    if len(tasks) > 1:
        raise ValueError("models of different tasks cannot be compared: "
                         + ", ".join(f"{m.name} is {m.task}" for m in loaded))
    task = tasks.pop()
    sizes = {m.labels.num_labels for m in loaded}
    if len(sizes) > 1:
        raise ValueError("models with different label spaces: " + ", ".join(f"{m.name}: {m.labels.describe()}"
                                                                         for m in loaded))
    chosen = check_metrics(metrics, task) if metrics else default_metrics(task, loaded[0].labels.num_labels)
    rows: dict[str, dict[str, Any]] = {}
    scored = None
    for model in loaded:
        length = max_length or model.max_length
        dev = token_dev_batches(data, columns, model.tokenizer, model.labels, model.labels.names(), length, batch_size) \
            if task == "token_classification" else dev_batches(data, columns, model.tokenizer, model.labels, length,
                                                                 batch_size)
        scored = scored or dev
        values = evaluate(model.logits, dev, device, task, chosen)
        rows[model.name] = {**values, "kind": model.kind, "parameters": parameter_count(model.model),
                            "rows_scored": dev.rows}
        log.info("%s: %s", model.name, ", ".join(f"{k} {v:.4f}" for k, v in values.items() if k in chosen))
    return {"task": task, "metrics": chosen, "data": {"source": str(data), "rows_scored": scored.rows,
                                                      "rows_rejected": scored.rejected, "rejected": scored.reasons},
            "models": rows}
