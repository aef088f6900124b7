"""The write side of the format: one padded teacher batch → the Arrow columns of its rows.

The labelling stage calls `encode_batch` after each forward pass and appends the columns to a
shard; everything about layouts and dtypes is decided by the `FeatureSet`, so the reader in
`distill.cache.reader` is its exact inverse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import torch

from distill.cache.encoding import ARROW_TYPES, fixed_array, quantize_int8, ragged_array, to_numpy
from distill.cache.features import Column, FeatureSet


def _vectors(column: Column, tensor: torch.Tensor, lengths: np.ndarray | None) -> dict[str, pa.Array]:
    """`tensor` is [rows, ...] (fixed) or [real tokens, hidden] (per token, with `lengths`)."""
    out = {}
    if column.scale:
        tensor, scale = quantize_int8(tensor)
        scale = scale.cpu().numpy()
        out[column.scale] = fixed_array(scale, pa.float32()) if lengths is None else ragged_array(scale, lengths, pa.float32())
    values = to_numpy(tensor, column.dtype)
    value_type = ARROW_TYPES[column.dtype]
    out[column.name] = fixed_array(values, value_type) if lengths is None else ragged_array(values, lengths, value_type)
    return out


def encode_batch(
    features: FeatureSet,
    input_ids: torch.Tensor,
    mask: torch.Tensor,
    logits: torch.Tensor,
    hidden_states: Sequence[torch.Tensor] | None = None,
    scores: Mapping[int, torch.Tensor] | None = None,
) -> dict[str, pa.Array]:
    """Columns for one padded batch, rows in batch order.

    `input_ids` and `mask` [B, T] on the host; `logits` [B, labels], `hidden_states` (transformers'
    tuple: 0 = embeddings, i = layer i, each [B, T, H]) and pre-softmax `scores` {layer: [B, heads,
    T, T]} on any device: they are cast to the storage dtype there, so less crosses to the host.
    """
    lengths = mask.sum(dim=1).numpy()
    real = mask.bool()
    on_device = real.to(logits.device)
    columns: dict[str, pa.Array] = {
        "input_ids": ragged_array(input_ids[real].to(torch.int32).cpu().numpy(), lengths, pa.int32()),
    }
    for column in features.columns():
        if column.kind == "logits":
            columns.update(_vectors(column, logits.float(), None))
        elif column.kind == "topk_indices":
            top = logits.float().topk(features.topk, dim=-1)
            columns["topk_indices"] = fixed_array(top.indices.to(torch.int32).cpu().numpy(), pa.int32())
            columns["topk_logits"] = fixed_array(to_numpy(top.values, features.dtype), ARROW_TYPES[features.dtype])
        elif column.kind == "cls":
            cls = torch.stack([hidden_states[layer][:, 0] for layer in features.cls_layers], dim=1).float()
            columns.update(_vectors(column, cls, None))
        elif column.kind in ("embedding", "hidden"):
            columns.update(_vectors(column, hidden_states[column.layer][on_device].float(), lengths))
        elif column.kind == "attention":
            block = scores[column.layer]
            flat = torch.cat([block[row, :, :n, :n].reshape(-1) for row, n in enumerate(lengths.tolist())])
            values = to_numpy(flat.float(), column.dtype)
            sizes = lengths.astype(np.int64) ** 2 * features.dims.num_heads
            columns[column.name] = ragged_array(values, sizes, ARROW_TYPES[column.dtype])
    return columns
