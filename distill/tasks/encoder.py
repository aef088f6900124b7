"""Encoder only (TinyBERT's general stage): no head, so no logits; the cache keeps hidden states,
attention or the embedding output, of a masked corpus or of task data."""

from __future__ import annotations

from typing import Any

from distill.common.config_io import ConfigError
from distill.tasks.base import Task


class Encoder(Task):
    name = head = "none"

    def output_size(self, config: Any) -> int:
        return 0

    def check_label_config(self, config: Any, masked_input: bool) -> None:
        if not masked_input and not config.wants("hidden") and not config.wants("attention"):
            raise ConfigError("an encoder-only teacher has no logits: cache hidden/attention/embedding features, "
                              "or fine-tune a classifier (pipelines/finetune_teacher.py)", "head")
