"""How students are found and built: the registry recipes name them by (`student: {name: bilstm, ...}`), their
options' check, and what a student may know of its teacher when built: the cache's account of it. Teacher weights
are not in a cache; a student copying them asks `teacher_weights(why)` (a verified copy, or an error naming
`--teacher`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill.common.config_io import ConfigError, validate_fields
from distill.common.registry import Registry
from distill.tasks import Task, task_of_head

STUDENTS = Registry("student")
register_student = STUDENTS.register
get_student = STUDENTS.get_class


def check_student_options(student, options: dict[str, Any]) -> dict[str, Any]:
    """A recipe's `student:` options checked against the student's `options_class` (less the options its
    build context supplies), when the recipe is loaded and again at build (`ConfigError`)."""
    allowed = [f.name for f in dataclasses.fields(student.options_class) if f.name not in student.context_options]
    unknown = sorted(set(options) - set(allowed), key=str)
    if unknown:
        raise ConfigError(f"{student.name} has no option(s) {', '.join(map(str, unknown))} (options: {', '.join(allowed)})")
    return validate_fields(student.options_class, options)


@dataclass
class BuildContext:
    teacher_config: Any  # the teacher's transformers config (from the cache's teacher_files/)
    num_labels: int
    num_layers: int
    vocab_size: int
    pad_token_id: int
    pair: bool
    token_ids: Callable[[], np.ndarray]  # distinct wordpiece ids in the cache
    input_embeddings: Callable[[], dict[str, torch.Tensor] | None]  # token_ids, rows, mean; None if absent
    teacher_weights: Callable[[str], Path]  # a verified teacher directory, or a one-line error naming `why`
    head: str = "classification"  # the teacher's head, which the student gets too (`distill.tasks.HEADS`)

    @property
    def task(self) -> Task:
        return task_of_head(self.head, self.num_labels)


def task_labels(context: BuildContext) -> dict[str, Any]:
    """Config keys of a new head: the label count, and for token tasks the teacher's tag names too."""
    return context.task.head_config(context.teacher_config, context.num_labels)
