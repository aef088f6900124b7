"""Pre-softmax attention scores and value vectors, captured while a BERT runs.

TinyBERT distils the unnormalised scores QKᵀ/√d and MiniLM the value relation VVᵀ/√d, which transformers
does not return, so we register an attention function: inside a `ScoreRecorder` it records the chosen
layers' scores (before the padding mask) and values; every other call runs PyTorch SDPA.
"""

from __future__ import annotations

from contextvars import ContextVar

import torch

ATTENTION_NAME = "distill_prescores"
_ACTIVE: ContextVar["ScoreRecorder | None"] = ContextVar("distill_score_recorder", default=None)
_REGISTERED = False


def _attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    recorder = _ACTIVE.get()
    layer = recorder.next_layer() if recorder is not None else None
    if layer is None or layer not in recorder.layers:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling  # [batch, heads, q, k], unmasked
    recorder.scores[layer], recorder.values[layer] = scores, value
    masked = scores if attention_mask is None else scores + attention_mask
    weights = torch.softmax(masked.float(), dim=-1).to(value.dtype)
    weights = torch.nn.functional.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), None


def register() -> str:
    """Make `ATTENTION_NAME` a valid `attn_implementation` (additive float masks, as eager uses)."""
    global _REGISTERED
    if not _REGISTERED:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, eager_mask

        AttentionInterface.register(ATTENTION_NAME, _attention)
        AttentionMaskInterface.register(ATTENTION_NAME, eager_mask)
        _REGISTERED = True
    return ATTENTION_NAME


class ScoreRecorder:
    """Records scores and values of `layers` (1-based encoder layers) for the forward passes run inside it.

    Layers are counted by call order, which is layer order for encoder-only models;
    `check(num_layers)` after a forward pass makes sure every layer went through us.
    """

    def __init__(self, layers: list[int]) -> None:
        self.layers = set(layers)
        self.scores: dict[int, torch.Tensor] = {}
        self.values: dict[int, torch.Tensor] = {}
        self.calls = 0

    def next_layer(self) -> int:
        self.calls += 1
        return self.calls

    def check(self, num_layers: int) -> None:
        if self.calls != num_layers:
            raise RuntimeError(
                f"attention capture saw {self.calls} attention calls for a {num_layers}-layer teacher; "
                "this architecture does not route attention through transformers' AttentionInterface"
            )

    def __enter__(self) -> "ScoreRecorder":
        self.scores, self.values, self.calls = {}, {}, 0
        self._token = _ACTIVE.set(self)
        return self

    def __exit__(self, *exc) -> None:
        _ACTIVE.reset(self._token)
