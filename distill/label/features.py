"""Which teacher outputs are cached, as which Arrow columns, and how they are cut from a batch.

A `FeatureSet` is resolved once per run from the config and the teacher's dimensions; its
schema is written into the manifest so readers rebuild tensors without guessing.
Hidden-state indices follow transformers' `hidden_states`: 0 = embedding output,
i = output of encoder layer i (1-based). Attention layers are 1-based encoder layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from distill.label.config import LabelConfig
from distill.label.encoding import ARROW_TYPES, fixed_array, fixed_type, quantize_int8, ragged_array, to_numpy
from distill.label.teacher import TeacherDims


@dataclass
class FeatureSet:
    dims: TeacherDims
    dtype: str
    quantize_hidden: bool
    topk: int | None = None
    cls_layers: list[int] = field(default_factory=list)
    hidden_layers: list[int] = field(default_factory=list)
    attention_layers: list[int] = field(default_factory=list)
    embedding: bool = False

    @classmethod
    def from_config(cls, config: LabelConfig, dims: TeacherDims) -> "FeatureSet":
        topk = min(config.topk, dims.num_labels) if config.wants("topk") else None
        for name in ("cls", "hidden", "attention"):
            config.layers(name, dims.num_layers)  # a bad layer list is an error even if the feature is off
        return cls(
            dims=dims,
            dtype=config.dtype,
            quantize_hidden=config.quantize_hidden,
            topk=topk,
            cls_layers=config.layers("cls", dims.num_layers) if config.wants("cls") else [],
            hidden_layers=config.layers("hidden", dims.num_layers) if config.wants("hidden") else [],
            attention_layers=config.layers("attention", dims.num_layers) if config.wants("attention") else [],
            embedding=config.wants("embedding"),
        )

    @property
    def needs_hidden_states(self) -> bool:
        return bool(self.cls_layers or self.hidden_layers or self.embedding)

    @property
    def hidden_dtype(self) -> str:
        return "int8" if self.quantize_hidden else self.dtype

    def describe(self) -> dict[str, Any]:
        """The manifest's account of the columns: enough to decode them without this code."""
        return {
            "dtype": self.dtype,
            "hidden_dtype": self.hidden_dtype,
            "int8_scale": "per vector, float32, in <column>_scale" if self.quantize_hidden else None,
            "num_labels": self.dims.num_labels,
            "hidden_size": self.dims.hidden_size,
            "num_heads": self.dims.num_heads,
            "topk": self.topk,
            "cls_layers": self.cls_layers,
            "hidden_layers": self.hidden_layers,
            "attention_layers": self.attention_layers,
            "attention_layout": "list per example: heads x len x len, row-major, pre-softmax, unmasked",
            "embedding": self.embedding,
            "columns": self.column_names(),
        }

    # -- schema -----------------------------------------------------------------------------
    def _hidden_fields(self, name: str, per_token: bool, shape: tuple[int, ...]) -> list[pa.Field]:
        value = fixed_type(ARROW_TYPES[self.hidden_dtype], shape)
        fields = [pa.field(name, pa.list_(value) if per_token else value)]
        if self.quantize_hidden:
            scale = fixed_type(pa.float32(), shape[:-1])
            fields.append(pa.field(f"{name}_scale", pa.list_(scale) if per_token else scale))
        return fields

    def fields(self) -> list[pa.Field]:
        value = ARROW_TYPES[self.dtype]
        dims = self.dims
        out = [pa.field("input_ids", pa.list_(pa.int32())), pa.field("logits", fixed_type(value, (dims.num_labels,)))]
        if self.topk:
            out += [pa.field("topk_indices", fixed_type(pa.int32(), (self.topk,))),
                    pa.field("topk_logits", fixed_type(value, (self.topk,)))]
        if self.cls_layers:
            out += self._hidden_fields("cls", False, (len(self.cls_layers), dims.hidden_size))
        if self.embedding:
            out += self._hidden_fields("embedding", True, (dims.hidden_size,))
        for layer in self.hidden_layers:
            out += self._hidden_fields(f"hidden_{layer}", True, (dims.hidden_size,))
        for layer in self.attention_layers:
            out.append(pa.field(f"attention_{layer}", pa.list_(value)))
        return out

    def column_names(self) -> list[str]:
        return [f.name for f in self.fields()]

    # -- extraction -------------------------------------------------------------------------
    def _hidden_columns(self, name: str, tensor: torch.Tensor, lengths: np.ndarray | None) -> dict[str, pa.Array]:
        """`tensor` is [rows, ...] (fixed) or [real tokens, hidden] (per token, with `lengths`)."""
        columns = {}
        if self.quantize_hidden:
            tensor, scale = quantize_int8(tensor)
            scale = scale.cpu().numpy()
            columns[f"{name}_scale"] = (
                fixed_array(scale, pa.float32()) if lengths is None else ragged_array(scale, lengths, pa.float32())
            )
        values = to_numpy(tensor, self.hidden_dtype)
        value_type = ARROW_TYPES[self.hidden_dtype]
        columns[name] = fixed_array(values, value_type) if lengths is None else ragged_array(values, lengths, value_type)
        return columns

    def extract(self, input_ids: torch.Tensor, mask: torch.Tensor, outputs, scores: dict[int, torch.Tensor]) -> dict[str, pa.Array]:
        """Columns for one padded batch (rows in batch order); `input_ids` and `mask` on the host."""
        lengths = mask.sum(dim=1).numpy()
        real = mask.bool()  # on the host, like input_ids
        on_device = real.to(outputs.logits.device)
        value_type = ARROW_TYPES[self.dtype]
        columns: dict[str, pa.Array] = {
            "input_ids": ragged_array(input_ids[real].to(torch.int32).cpu().numpy(), lengths, pa.int32()),
            "logits": fixed_array(to_numpy(outputs.logits.float(), self.dtype), value_type),
        }
        if self.topk:
            top = outputs.logits.float().topk(self.topk, dim=-1)
            columns["topk_indices"] = fixed_array(top.indices.to(torch.int32).cpu().numpy(), pa.int32())
            columns["topk_logits"] = fixed_array(to_numpy(top.values, self.dtype), value_type)
        states = outputs.hidden_states
        if self.cls_layers:
            cls = torch.stack([states[layer][:, 0] for layer in self.cls_layers], dim=1).float()
            columns.update(self._hidden_columns("cls", cls, None))
        if self.embedding:
            columns.update(self._hidden_columns("embedding", states[0][on_device].float(), lengths))
        for layer in self.hidden_layers:
            columns.update(self._hidden_columns(f"hidden_{layer}", states[layer][on_device].float(), lengths))
        for layer in self.attention_layers:
            block = scores[layer]
            flat = [block[row, :, :n, :n].reshape(-1) for row, n in enumerate(lengths.tolist())]
            values = to_numpy(torch.cat(flat).float(), self.dtype)
            columns[f"attention_{layer}"] = ragged_array(values, lengths.astype(np.int64) ** 2 * self.dims.num_heads, value_type)
        return columns
