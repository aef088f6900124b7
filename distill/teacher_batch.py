"""What the losses see of the teacher for one batch, whether read from the cache or computed online."""

from __future__ import annotations

from dataclasses import dataclass, field

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

    @property
    def logits(self) -> torch.Tensor:
        return self.tensors["logits"]

    @property
    def mask(self) -> torch.Tensor:
        return self.tensors["attention_mask"].bool()

    def cls(self, layer: int) -> torch.Tensor:
        return self.tensors[column_name("cls")][:, self.cls_layers.index(layer)]

    def hidden(self, layer: int) -> torch.Tensor:
        """Token states of `layer` (0 = embedding output)."""
        return self.tensors[column_name("hidden", layer)]

    def attention(self, layer: int) -> torch.Tensor:
        return self.tensors[column_name("attention", layer)]

    def to(self, device: torch.device | str) -> "TeacherBatch":
        moved = {k: v.to(device, non_blocking=True) for k, v in self.tensors.items()}
        return TeacherBatch(moved, self.num_layers, self.cls_layers)
