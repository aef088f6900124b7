"""What a student returns: logits plus whatever intermediate states the recipe's losses read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch


@dataclass
class StudentOutput:
    # classification logits [B, labels], token tasks [B, W, labels] at word starts; None for masked-LM and encoder students
    logits: torch.Tensor | None
    num_layers: int
    hidden_states: tuple[torch.Tensor, ...] | None = None  # 0 = embedding output, j = layer j
    scores: dict[int, torch.Tensor] = field(default_factory=dict)  # pre-softmax attention per layer
    values: dict[int, torch.Tensor] = field(default_factory=dict)  # value vectors [B, heads, T, head_dim] per layer
    project_embedding: Callable[[torch.Tensor], torch.Tensor] | None = None  # TinyBERT W_e
    project_layer: Callable[[torch.Tensor], torch.Tensor] | None = None  # TinyBERT W_h
    mlm_logits: torch.Tensor | None = None  # [N, vocab] at the batch's N masked positions, row-major

    def hidden(self, layer: int) -> torch.Tensor:
        if self.hidden_states is None:
            raise ValueError("this student does not expose hidden states")
        return self.hidden_states[layer]

    def cls(self, layer: int) -> torch.Tensor:
        return self.hidden(layer)[:, 0]

    def projected_hidden(self, layer: int) -> torch.Tensor:
        """Token states of `layer` mapped to the teacher's width (identity for same-width students)."""
        project = self.project_embedding if layer == 0 else self.project_layer
        states = self.hidden(layer)
        return project(states) if project is not None else states

    def attention(self, layer: int) -> torch.Tensor:
        return self.scores[layer]

    def value_relation(self, layer: int, mask: torch.Tensor) -> torch.Tensor:
        """MiniLM's pre-softmax value relation V Vᵀ / √head_dim [B, heads, T, T], zero outside real pairs."""
        from distill.cache.attention_qk import scaled_relation

        return scaled_relation(self.values[layer], self.values[layer], mask)
