"""The write side of the format: one padded teacher batch → the Arrow columns of its rows. The
`FeatureSet` decides every layout and dtype, so `distill.cache.reader` is its exact inverse."""

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


def topk_targets(logits: torch.Tensor, k: int, temperature: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The k largest logits, their indices, and log Σ_j exp(z_j / T) over the whole label space:
    with it a loss knows the teacher's exact top-k probabilities at T and the tail's mass."""
    logits = logits.float()
    top = logits.topk(k, dim=-1)
    return top.indices, top.values, torch.logsumexp(logits / temperature, dim=-1)


def _topk_columns(features: FeatureSet, logits: torch.Tensor, lengths: np.ndarray | None) -> dict[str, pa.Array]:
    """Top-k columns: fixed per example (classification) or one entry per masked position (`lengths`)."""
    indices, values, lse = topk_targets(logits, features.topk, features.topk_temperature)
    index_dtype = features.topk_index_dtype
    index_values = indices.to(torch.int32).cpu().numpy().astype(np.uint16 if index_dtype == "uint16" else np.int32)
    index_type = pa.uint16() if index_dtype == "uint16" else pa.int32()
    columns = {}
    for name, array, value_type in (("topk_indices", index_values, index_type),
                                    ("topk_logits", to_numpy(values, features.dtype), ARROW_TYPES[features.dtype]),
                                    ("topk_logsumexp", lse.cpu().numpy().astype(np.float32), pa.float32())):
        columns[name] = fixed_array(array, value_type) if lengths is None else ragged_array(array, lengths, value_type)
    return columns


def _at_word_starts(logits: torch.Tensor, starts: list[np.ndarray]) -> torch.Tensor:
    """[B, T, C] logits at each row's word starts, row-major: [sum(words), C] (float32)."""
    rows = np.concatenate([np.full(len(s), i, dtype=np.int64) for i, s in enumerate(starts)]) if starts else np.zeros(0, np.int64)
    positions = np.concatenate([np.asarray(s, dtype=np.int64) for s in starts]) if starts else np.zeros(0, np.int64)
    index = (torch.from_numpy(rows).to(logits.device), torch.from_numpy(positions).to(logits.device))
    return logits[index].float()


def _ragged_pair(columns: dict[str, pa.Array], names: tuple[str, str], parts) -> np.ndarray:
    """Two same-length int32 list columns per row (masked positions + their tokens, or word starts +
    their tags) into `columns`; returns the per-row lengths."""
    first, second = parts
    lengths = np.array([len(p) for p in first], dtype=np.int64)
    for name, values in zip(names, (first, second)):
        flat = np.concatenate(values).astype(np.int32) if len(values) else np.zeros(0, np.int32)
        columns[name] = ragged_array(flat, lengths, pa.int32())
    return lengths


def encode_batch(features: FeatureSet, input_ids: torch.Tensor, mask: torch.Tensor, logits: torch.Tensor | None,
                 hidden_states: Sequence[torch.Tensor] | None = None, scores: Mapping[int, torch.Tensor] | None = None,
                 mlm: tuple[list[np.ndarray], list[np.ndarray]] | None = None,
                 words: tuple[list[np.ndarray], list[np.ndarray]] | None = None) -> dict[str, pa.Array]:
    """Columns for one padded batch, rows in batch order. `logits` are [B, labels], [B, T, labels] (token tasks,
    stored at `words`' first pieces), [N, vocab] at the masked positions, or None; `mlm` = (positions, true ids)
    and `words` = (first pieces, gold tag ids) per row. Device tensors are cast there, so less crosses to the host.
    """
    lengths = mask.sum(dim=1).numpy()
    real = mask.bool()
    device = logits.device if logits is not None else (hidden_states[0].device if hidden_states else "cpu")
    on_device = real.to(device)
    columns = {"input_ids": ragged_array(input_ids[real].to(torch.int32).cpu().numpy(), lengths, pa.int32())}
    masked_lengths = _ragged_pair(columns, ("mlm_positions", "mlm_labels"), mlm) if features.masked else None
    word_lengths = _ragged_pair(columns, ("word_starts", "labels"), words) if features.per_word else None
    for column in features.columns():
        if column.kind == "logits" and column.layout == "per_word":
            columns.update(_vectors(column, _at_word_starts(logits, words[0]), word_lengths))
        elif column.kind == "logits":
            columns.update(_vectors(column, logits.float(), None))
        elif column.kind == "topk_indices":
            if features.legacy_logits:
                raise ValueError("format-2 caches are read, not written")
            columns.update(_topk_columns(features, logits, masked_lengths if column.layout == "per_masked" else None))
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
