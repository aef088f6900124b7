"""Masked LM (DistilBERT's general stage): vocabulary logits at a masked corpus's masked positions,
kept as top-k (a [len, 30 522] row per example is never stored, nor even computed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from distill.common.config_io import ConfigError
from distill.common.models import at_masked
from distill.tasks.base import Task


def masked_lm_head(model):
    """The module mapping final hidden states to vocabulary logits (BERT's `cls`, RoBERTa's
    `lm_head`), or None: it then runs on every position and is gathered."""
    return getattr(model, "cls", None) or getattr(model, "lm_head", None)


class MaskedLM(Task):
    name = head = "masked_lm"
    auto_class = "AutoModelForMaskedLM"
    masked = True
    topk_layout = "per_masked"
    topk_temperature = 2.0  # DistilBERT's T

    def output_size(self, config: Any) -> int:
        return config.vocab_size

    def check_label_config(self, config: Any, masked_input: bool) -> None:
        if not masked_input:
            raise ConfigError("a masked-LM teacher labels masked positions: give it a masked corpus "
                              "(pipelines/general_distill_data.py), or a classifier for task data", "head")

    def topk(self, config: Any, dims: Any) -> int | None:
        return min(config.topk, dims.vocab_size)  # always: a vocabulary of logits per position is never stored

    def check_topk(self, topk: int | None) -> None:
        if not topk:
            raise ValueError("a masked-LM teacher's targets are stored as top-k (the full vocabulary is never stored)")

    def forward(self, model, inputs: dict, hidden_states: bool, extra: Mapping[str, Any]):
        """Masked-LM logits [N, vocab] at the N masked positions (`mlm_positions` [B, M], −1 = padding),
        row-major; the head runs only there (~20 of 128 positions at 15 % masking)."""
        positions, head = extra.get("mlm_positions"), masked_lm_head(model)
        if head is None:
            outputs = model(**inputs, output_hidden_states=True)
            mlm = None if positions is None else at_masked(outputs.logits, positions.to(outputs.logits.device))
            return None, mlm, outputs.hidden_states
        outputs = model.base_model(**inputs, output_hidden_states=hidden_states)
        sequence = outputs.last_hidden_state
        mlm = None if positions is None else head(at_masked(sequence, positions.to(sequence.device)))
        return None, mlm, outputs.hidden_states
