"""What the losses see of the teacher for one batch, whether read from the cache or computed online."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from distill.cache.features import column_name


class MissingFeatureError(KeyError):
    """A loss needs a teacher feature that this cache (or online teacher config) does not provide."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass
class TeacherBatch:
    tensors: dict[str, torch.Tensor]  # padded batch as `distill.cache` builds it, keyed by `column_name`
    num_layers: int  # teacher encoder layers
    cls_layers: list[int] = field(default_factory=list)  # layer of each `cls` slot
    # attention: recompute, relation — {layer: query/key(/value) weights}; rebuilt from hidden_{layer-1} on demand
    attention_weights: dict[int, dict[str, Any]] | None = None
    topk_temperature: float = 1.0  # the temperature of `topk_logsumexp`

    @property
    def logits(self) -> torch.Tensor:
        if "logits" not in self.tensors:
            raise MissingFeatureError("this cache stores no full teacher logits (top-k only, or no classifier head); "
                                      "use topk_kd, or relabel without the topk feature")
        return self.tensors["logits"]

    def predictions(self) -> torch.Tensor:
        """The teacher's argmax class per example (or word): from full logits, else the first top-k index."""
        if "logits" in self.tensors:
            return self.tensors["logits"].argmax(dim=-1)
        return self.tensors["topk_indices"][..., 0]

    @property
    def per_word(self) -> bool:
        """A token task: logits, labels and predictions are [B, W, ...] over the batch's words."""
        return "word_starts" in self.tensors

    @property
    def word_mask(self) -> torch.Tensor:  # [B, W]: real word slots
        return self.tensors["word_starts"] >= 0

    @property
    def mask(self) -> torch.Tensor:
        return self.tensors["attention_mask"].bool()

    @property
    def masked_positions(self) -> torch.Tensor:  # [B, M]: real slots of the per-masked columns
        return self.tensors["mlm_positions"] >= 0

    def cls(self, layer: int) -> torch.Tensor:
        return self.tensors[column_name("cls")][:, self.cls_layers.index(layer)]

    def hidden(self, layer: int) -> torch.Tensor:
        """Token states of `layer` (0 = embedding output)."""
        return self.tensors[column_name("hidden", layer)]

    def attention(self, layer: int) -> torch.Tensor:
        name = column_name("attention", layer)
        if name not in self.tensors and self.attention_weights and layer in self.attention_weights:
            from distill.cache.attention_qk import recompute_scores

            self.tensors[name] = recompute_scores(self.hidden(layer - 1).float(), self.mask, self.attention_weights[layer])
        return self.tensors[name]

    def value_relation(self, layer: int) -> torch.Tensor:
        """MiniLM's pre-softmax value relation [B, heads, T, T] of `layer`, recomputed from hidden_{layer-1}."""
        name = f"value_relation_{layer}"
        if name not in self.tensors:
            if not self.attention_weights or "value.weight" not in self.attention_weights.get(layer, {}):
                raise MissingFeatureError(f"no value projection of teacher layer {layer} in this cache; relabel with "
                                          f"--features relation --set label.relation_layers=[{layer}]")
            from distill.cache.attention_qk import recompute_value_relation

            self.tensors[name] = recompute_value_relation(self.hidden(layer - 1).float(), self.mask,
                                                          self.attention_weights[layer])
        return self.tensors[name]

    def to(self, device: torch.device | str) -> "TeacherBatch":
        moved = {k: v.to(device, non_blocking=True) for k, v in self.tensors.items()}
        weights = None
        if self.attention_weights is not None:
            weights = {layer: {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in w.items()}
                       for layer, w in self.attention_weights.items()}
        return TeacherBatch(moved, self.num_layers, self.cls_layers, weights, self.topk_temperature)
