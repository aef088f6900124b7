"""Reading a teacher cache back: a memory-mapped `datasets.Dataset` plus padded batches.

`load(path)` opens `<out>/teacher/<fingerprint>/` without copying it into RAM. Two ways in:
- `cache.dataset` (torch format) with `cache.collate` in a DataLoader: the Hugging Face way;
- `cache.batch(indices)`: the hot path. It takes rows straight from the memory-mapped Arrow
  table and pads from flat buffers, skipping the per-row Python objects `datasets` builds
  (and its float16 → float32 widening of nested columns).
Both return the same dict of padded tensors: `input_ids`, `attention_mask`, `token_type_ids`
(pairs, rebuilt from [SEP]), `labels` (gold, -100 where missing), `aug_index`, `logits`, and
each cached feature: `cls` [B, layers, H], `embedding` / `hidden_<l>` [B, T, H],
`attention_<l>` [B, heads, T, T] (0 at padding), `topk_indices` / `topk_logits` [B, k].
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from distill.label.encoding import dequantize_int8, flat_values, from_numpy, list_lengths
from distill.storage.remote import is_remote, local_copy
from distill.storage.shards import SHARD_PREFIX, read_shard
from distill.storage.stage_dir import MANIFEST_NAME

PER_TOKEN_PREFIXES = ("hidden_", "embedding")


class CacheError(FileNotFoundError):
    pass


def _is_per_token(name: str) -> bool:
    return name.startswith(PER_TOKEN_PREFIXES)


@dataclass
class TeacherCache:
    path: Path
    manifest: dict[str, Any]
    table: pa.Table  # memory-mapped, shard order
    dtype: torch.dtype = torch.float32
    _dataset: Any = field(default=None, repr=False)

    @property
    def features(self) -> dict[str, Any]:
        return self.manifest["features"]

    @property
    def is_pair(self) -> bool:
        return bool(self.manifest["input"]["is_pair"])

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def dataset(self):
        """The cache as a `datasets.Dataset` in torch format (memory-mapped Arrow, no copy)."""
        if self._dataset is None:
            import datasets

            files = sorted(self.path.glob(f"{SHARD_PREFIX}*.arrow"))
            if files:
                parts = [datasets.Dataset.from_file(str(f)) for f in files]
            else:
                parts = [datasets.Dataset.from_parquet(str(f)) for f in sorted(self.path.glob(f"{SHARD_PREFIX}*.parquet"))]
            self._dataset = datasets.concatenate_datasets(parts).with_format("torch")
        return self._dataset

    # -- batches ----------------------------------------------------------------------------
    def batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        """Padded tensors for rows `indices`, straight from the memory-mapped columns."""
        rows = self.table.take(pa.array(np.asarray(indices, dtype=np.int64)))
        columns = {name: rows.column(name).combine_chunks() for name in rows.column_names}
        lengths = torch.from_numpy(list_lengths(columns["input_ids"]).astype(np.int64))
        out = self._token_inputs(torch.from_numpy(flat_values(columns["input_ids"]).astype(np.int64)), lengths)
        out.update(self._row_fields(columns))
        for name in self.features["columns"]:
            if name == "input_ids" or name.endswith("_scale"):
                continue
            values = self._decode(name, flat_values(columns[name]), columns)
            out[name] = self._shape(name, values, lengths)
        return out

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """DataLoader `collate_fn` for rows of `cache.dataset` (torch format)."""
        lengths = torch.tensor([len(e["input_ids"]) for e in examples])
        out = self._token_inputs(torch.cat([e["input_ids"].long() for e in examples]), lengths)
        labels = [e.get("label") for e in examples]
        if labels and all(lab is None or isinstance(lab, (int, torch.Tensor)) for lab in labels):
            out["labels"] = torch.tensor([-100 if lab is None else int(lab) for lab in labels])
        if "aug_index" in examples[0]:
            out["aug_index"] = torch.tensor([int(e["aug_index"]) for e in examples])
        for name in self.features["columns"]:
            if name == "input_ids" or name.endswith("_scale"):
                continue
            parts = [e[name].reshape(-1) for e in examples]
            flat = torch.cat(parts).numpy()
            scale = torch.cat([e[f"{name}_scale"].reshape(-1) for e in examples]).numpy() if f"{name}_scale" in examples[0] else None
            values = self._decode(name, flat, {f"{name}_scale": scale} if scale is not None else {})
            out[name] = self._shape(name, values, lengths)
        return out

    # -- helpers ----------------------------------------------------------------------------
    def _token_inputs(self, flat_ids: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        tokenizer = self.manifest["tokenizer"]
        width = int(lengths.max())
        mask = torch.arange(width)[None, :] < lengths[:, None]
        input_ids = torch.full(mask.shape, tokenizer["pad_token_id"], dtype=torch.long)
        input_ids[mask] = flat_ids
        out = {"input_ids": input_ids, "attention_mask": mask.long()}
        if self.is_pair and tokenizer.get("segment_ids", True):
            is_sep = (input_ids == tokenizer["sep_token_id"]).long()
            out["token_type_ids"] = (((is_sep.cumsum(dim=1) - is_sep) > 0) & mask).long()
        return out

    @staticmethod
    def _row_fields(columns: dict[str, pa.Array]) -> dict[str, torch.Tensor]:
        out = {}
        if "label" in columns and pa.types.is_integer(columns["label"].type):
            out["labels"] = torch.from_numpy(columns["label"].fill_null(-100).to_numpy().astype(np.int64))
        if "aug_index" in columns:
            out["aug_index"] = torch.from_numpy(columns["aug_index"].to_numpy().astype(np.int64))
        return out

    def _decode(self, name: str, values: np.ndarray, columns: dict) -> torch.Tensor:
        """Stored dtype → `self.dtype`: bfloat16 bits reinterpreted, int8 rescaled by its per-vector scale."""
        quantized = name in ("cls", "embedding") or name.startswith("hidden_")
        if quantized and self.features["hidden_dtype"] == "int8":
            scale = columns[f"{name}_scale"]
            scale = flat_values(scale) if isinstance(scale, pa.Array) else scale
            hidden = self.features["hidden_size"]
            tensor = dequantize_int8(from_numpy(values, "int8").view(-1, hidden), from_numpy(np.asarray(scale, np.float32), "float32"))
            return tensor.reshape(-1).to(self.dtype)
        if name == "topk_indices":
            return torch.from_numpy(values.astype(np.int64))
        stored = self.features["hidden_dtype"] if quantized else self.features["dtype"]
        return from_numpy(values, stored).to(self.dtype)

    def _shape(self, name: str, values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        batch, width = len(lengths), int(lengths.max())
        features = self.features
        if _is_per_token(name):
            mask = torch.arange(width)[None, :] < lengths[:, None]
            padded = torch.zeros(batch, width, features["hidden_size"], dtype=values.dtype)
            padded[mask] = values.view(-1, features["hidden_size"])
            return padded
        if name.startswith("attention_"):
            heads = features["num_heads"]
            padded = torch.zeros(batch, heads, width, width, dtype=values.dtype)
            start = 0
            for row, n in enumerate(lengths.tolist()):
                padded[row, :, :n, :n] = values[start : start + heads * n * n].view(heads, n, n)
                start += heads * n * n
            return padded
        return values.view(batch, *self._fixed_shape(name))

    def _fixed_shape(self, name: str) -> tuple[int, ...]:
        features = self.features
        if name == "cls":
            return (len(features["cls_layers"]), features["hidden_size"])
        if name == "logits":
            return (features["num_labels"],)
        return (features["topk"],)


def resolve_cache_dir(path: str | Path) -> Path:
    """A cache directory as given, or the last finished one below a pipeline output
    (`<out>` or `<out>/teacher`, through the `LATEST` pointer the labelling stage writes).
    A remote URI (s3://...) is first pulled into local staging (committed files only)."""
    path = local_copy(path)
    for pointer in (path / "teacher" / "LATEST", path / "LATEST"):
        if not (path / MANIFEST_NAME).exists() and pointer.exists():
            return pointer.parent / pointer.read_text().strip()
    return path


def load(path: str | Path, dtype: torch.dtype = torch.float32) -> TeacherCache:
    """Open a finished teacher cache: `<out>/teacher/<fingerprint>`, or `<out>` for its latest
    (local, or a remote URI such as s3://bucket/run)."""
    given, path = path, resolve_cache_dir(path)
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.exists():
        found = sorted(p.parent for p in path.glob(f"*/*/{MANIFEST_NAME}")) + sorted(p.parent for p in path.glob(f"*/{MANIFEST_NAME}"))
        hint = f"; caches below it: {', '.join(map(str, found))}" if found else ""
        where = f"{given} (pulled into {path})" if is_remote(given) else str(path)
        raise CacheError(f"{where}: not a finished teacher cache (no {MANIFEST_NAME}){hint}")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("stage") != "label" or not manifest.get("complete"):
        raise CacheError(f"{manifest_path}: not a complete teacher cache (stage {manifest.get('stage')!r})")
    tables = [read_shard(path / shard["file"]) for shard in manifest["shards"]]
    return TeacherCache(path, manifest, pa.concat_tables(tables), dtype)
