"""Task kinds, one module each, and the task of a name (`get_task`), a cache's or student's head
(`task_of_head`), augmented data (`input_task`) or a teacher's config (`teacher_task`). docs/tasks.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from distill.common.labels import LabelSpace
from distill.tasks.base import Task
from distill.tasks.encoder import Encoder
from distill.tasks.masked_lm import MaskedLM
from distill.tasks.regression import Regression
from distill.tasks.sequence import SequenceClassification
from distill.tasks.token import TokenClassification

TASKS: dict[str, Task] = {t.name: t for t in (SequenceClassification(), Regression(), TokenClassification(),
                                               MaskedLM(), Encoder())}
HEADS = tuple(dict.fromkeys(t.head for t in TASKS.values()))  # what a cache manifest's `features.head` may say


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    return TASKS[name]


def task_of_head(head: str | Task, num_labels: int | None = None) -> Task:
    """The task of a teacher head (a cache's `features.head`, a student's `head`)."""
    if isinstance(head, Task):
        return head
    if head not in HEADS:
        raise ValueError(f"unknown teacher head {head!r} (known: {', '.join(HEADS)})")
    return TASKS["regression" if head == "classification" and num_labels == 1 else head]


def data_task(words: bool) -> Task:
    """The task labelled data asks for: a tag per word (tagged words), else a class per sentence."""
    return TASKS["token_classification" if words else "classification"]


def input_task(manifest: Mapping[str, Any]) -> Task:
    """The task of an augmented manifest's data (`task`; absent, as in a corpus's: sentences)."""
    return data_task(manifest.get("task") == TokenClassification.input_task)


def teacher_task(config: Mapping[str, Any], corpus: bool = False, words: bool = False, head: str = "auto") -> Task:
    """A teacher's task from its config.json: `head` unless `auto`, else from its architectures (a masked
    LM or an encoder for a corpus; a token classifier, or for `words` input; else a sequence classifier).
    A classifier with one output (or `problem_type: regression`) is regression."""
    architectures = config.get("architectures") or []
    if head == "auto" and corpus:
        head = "masked_lm" if any(a.endswith(("ForMaskedLM", "ForPreTraining")) for a in architectures) else "none"
    elif head == "auto":
        tagger = words or any(a.endswith("ForTokenClassification") for a in architectures)
        head = "token_classification" if tagger else "classification"
    num_labels = LabelSpace.from_config(config).num_labels
    return task_of_head(head, 1 if config.get("problem_type") == Regression.problem_type else num_labels)


__all__ = ["HEADS", "TASKS", "Task", "data_task", "get_task", "input_task", "task_of_head", "teacher_task"]
