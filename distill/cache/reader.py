"""Reading a teacher cache back: a memory-mapped `datasets.Dataset` plus padded batches.

`cache.batch(indices)` is the hot path (rows padded straight from flat Arrow buffers); `cache.dataset` +
`cache.collate` is the Hugging Face way. Both give the same tensors; shapes, dtypes and padding come from the
manifest's feature description (docs/design.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from distill.cache.encoding import (
    dequantize_int8, distinct_token_ids, flat_values, from_numpy, list_lengths, take_rows,
)
from distill.cache.features import Column, FeatureSet, TeacherDims
from distill.cache.format import MANIFEST_NAME, TEACHER_FILES_DIR, CacheError, check_format_version
from distill.common.labels import LabelSpace
from distill.storage.remote import is_remote, local_copy
from distill.storage.shards import ShardRecord, read_shard
from distill.storage.stage_dir import DamagedFileError, read_record, verify_record
from distill.tasks import Task

VERIFY_MODES = ("full", "size")
# padding of per-masked and per-word columns (0 elsewhere)
PAD_VALUES = {"mlm_positions": -1, "mlm_labels": -100, "word_starts": -1, "labels": -100}
# layout -> the column whose lengths are its rows: tokens, masked positions, words
LENGTHS = {"per_token": "input_ids", "per_masked": "mlm_positions", "per_word": "word_starts"}


class CacheCorruptError(CacheError):
    """A cache file does not match the manifest's record of it."""


@dataclass
class TeacherCache:
    path: Path
    manifest: dict[str, Any]
    table: pa.Table  # memory-mapped, shard order
    dtype: torch.dtype = torch.float32
    _dataset: Any = field(default=None, repr=False)

    @cached_property
    def features(self) -> FeatureSet:
        return FeatureSet.from_manifest(self.manifest["features"])

    @property
    def task(self) -> Task:
        """The teacher's task (`distill.tasks`): what the cache's predictions and gold labels are."""
        return self.features.teacher_task

    def label_space(self) -> LabelSpace | None:
        """The teacher's label names and ids, from the manifest."""
        return self.task.label_space({"num_labels": self.dims.num_labels, **(self.manifest.get("labels") or {})})

    @property
    def dims(self) -> TeacherDims:
        return self.features.dims

    @property
    def is_pair(self) -> bool:
        return bool(self.manifest["input"]["is_pair"])

    @property
    def fingerprint(self) -> str:
        return self.manifest["fingerprint"]

    @property
    def teacher_files(self) -> Path:
        """The teacher's config.json and tokenizer files: `from_pretrained`-able, with no weights."""
        return self.path / TEACHER_FILES_DIR

    def __len__(self) -> int:
        return self.table.num_rows

    def tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.teacher_files)

    def teacher_config(self):
        """The teacher's transformers config (labels, dimensions, model type), from the cache."""
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(self.teacher_files)

    def token_ids(self) -> np.ndarray:
        """The distinct wordpiece ids the cache holds."""
        return distinct_token_ids([self.table])

    def verify(self, mode: str = "full") -> None:
        """Check every shard and teacher file against the manifest (see `verify_cache`)."""
        verify_cache(self.path, self.manifest, mode)

    @property
    def dataset(self):
        """The cache as a `datasets.Dataset` in torch format (memory-mapped Arrow, no copy)."""
        if self._dataset is None:
            import datasets

            files = [self.path / shard["file"] for shard in self.manifest["shards"]]
            parts = [datasets.Dataset.from_file(str(f)) if f.suffix == ".arrow" else datasets.Dataset.from_parquet(str(f))
                     for f in files]
            self._dataset = datasets.concatenate_datasets(parts).with_format("torch")
        return self._dataset

    def batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        """Padded tensors for rows `indices`, straight from the memory-mapped columns."""
        rows = take_rows(self.table, indices)
        columns = {name: rows.column(name).combine_chunks() for name in rows.column_names}
        lengths = {name: list_lengths(columns[name]) for name in LENGTHS.values() if name in columns}
        return self._assemble(lambda name: flat_values(columns[name]), lengths, self._row_fields(columns))

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """DataLoader `collate_fn` for rows of `cache.dataset` (torch format)."""
        lengths = {name: [len(e[name]) for e in examples] for name in LENGTHS.values() if name in examples[0]}
        out = {}
        labels = [e.get("label") for e in examples]
        if labels and all(lab is None or isinstance(lab, (int, float, torch.Tensor)) for lab in labels):
            if any(isinstance(lab, float) or (isinstance(lab, torch.Tensor) and lab.is_floating_point()) for lab in labels):
                out["labels"] = torch.tensor([float("nan") if lab is None else float(lab) for lab in labels])
            else:
                out["labels"] = torch.tensor([-100 if lab is None else int(lab) for lab in labels])
        if "aug_index" in examples[0]:
            out["aug_index"] = torch.tensor([int(e["aug_index"]) for e in examples])
        return self._assemble(lambda name: torch.cat([e[name].reshape(-1) for e in examples]).numpy(), lengths, out)

    def _assemble(self, flat, lengths: dict[str, Any], fields: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Both read paths: `flat(column)` gives a column's values, `lengths` each layout's row lengths."""
        lengths = {name: torch.from_numpy(np.asarray(n, dtype=np.int64)) for name, n in lengths.items()}
        ids = torch.from_numpy(flat("input_ids").astype(np.int64))
        out = {**self._token_inputs(ids, lengths["input_ids"]), **fields}
        for column in (c for c in self.features.columns() if c.kind not in ("input_ids", "scale")):
            values = self._decode(column, flat(column.name), flat(column.scale) if column.scale else None)
            out[column.name] = self._shape(column, values, lengths[LENGTHS.get(column.layout, "input_ids")])
        if "word_starts" in out:
            out["word_mask"] = out["word_starts"] >= 0
        if "labels" in out:
            out["labels"] = self.task.gold(out["labels"])  # as the task's losses read them
        return out

    def attention_weights(self) -> dict[int, dict[str, torch.Tensor]] | None:
        """The teacher's projection weights of the recomputed layers (`attention: recompute`, `relation`)."""
        from distill.cache.attention_qk import read_attention_weights

        return read_attention_weights(self.path / TEACHER_FILES_DIR) if self.features.projection_layers else None

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
        elif "label" in columns and pa.types.is_floating(columns["label"].type):  # regression: NaN = no gold score
            out["labels"] = torch.from_numpy(columns["label"].fill_null(float("nan")).to_numpy().astype(np.float32))
        if "aug_index" in columns:
            out["aug_index"] = torch.from_numpy(columns["aug_index"].to_numpy().astype(np.int64))
        return out

    def _decode(self, column: Column, values: np.ndarray, scale: np.ndarray | None) -> torch.Tensor:
        """Stored dtype → `self.dtype`: bfloat16 bits reinterpreted, int8 rescaled by its per-vector scale."""
        if column.dtype in ("int32", "uint16"):
            return torch.from_numpy(values.astype(np.int64))
        if column.dtype == "int8":
            width = column.shape[-1]
            tensor = dequantize_int8(from_numpy(values, "int8").view(-1, width), from_numpy(np.asarray(scale, np.float32), "float32"))
            return tensor.reshape(-1).to(self.dtype)
        return from_numpy(values, column.dtype).to(self.dtype)

    @staticmethod
    def _shape(column: Column, values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Padded [B, width, *shape] (`lengths` = tokens per row, or masked positions for `per_masked`)."""
        batch, width = len(lengths), int(lengths.max()) if len(lengths) else 0
        if column.layout in ("per_token", "per_masked", "per_word"):
            mask = torch.arange(width)[None, :] < lengths[:, None]
            pad = PAD_VALUES.get(column.kind, 0)
            padded = torch.full((batch, width, *column.shape), pad, dtype=values.dtype)
            padded[mask] = values.view(-1, *column.shape)
            return padded
        if column.layout == "square":
            (heads,) = column.shape
            padded = torch.zeros(batch, heads, width, width, dtype=values.dtype)
            start = 0
            for row, n in enumerate(lengths.tolist()):
                padded[row, :, :n, :n] = values[start : start + heads * n * n].view(heads, n, n)
                start += heads * n * n
            return padded
        return values.view(batch, *column.shape)


def cache_problems(path: Path, manifest: dict[str, Any], mode: str = "full") -> list[str]:
    """Files that differ from the manifest (sizes; sha256 with `full`): memory-mapped reads trust any bytes."""
    if mode not in VERIFY_MODES:
        raise ValueError(f"verify mode must be one of {', '.join(VERIFY_MODES)}, not {mode!r}")
    files = [(path, ShardRecord.from_dict(shard)) for shard in manifest["shards"]]
    files += [(path / TEACHER_FILES_DIR, ShardRecord(name, 0, recorded["bytes"], recorded["sha256"]))
              for name, recorded in manifest.get("teacher_files", {}).items()]
    problems = []
    for directory, record in files:
        problem = verify_record(directory, record, sha256=mode == "full")
        if problem:
            problems.append(f"{directory / record.file}: {problem} against the cache manifest")
    return problems


def verify_cache(path: Path, manifest: dict[str, Any], mode: str = "full") -> None:
    """Refuse a cache with any file that does not match its manifest (see `cache_problems`)."""
    problems = cache_problems(path, manifest, mode)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CacheCorruptError(f"{problems[0]}{more}; {relabel_advice(manifest)}")


def relabel_advice(manifest: dict[str, Any]) -> str:
    """How to rebuild a damaged cache: the command that made it, rerun (only bad shards are redone)."""
    command = (manifest.get("produced_by") or {}).get("command")
    how = f"rerun `{command}`" if command else "rerun augment_and_label.py with the cache's --output"
    return f"relabel it: {how} where the augmented data lives (only damaged shards are relabelled), then copy the cache again"


def resolve_cache_dir(path: str | Path) -> Path:
    """A cache directory as given, or the `LATEST` one below `<out>` or `<out>/teacher`; remote URIs are
    first pulled into local staging (committed files only)."""
    path = local_copy(path)
    for pointer in (path / "teacher" / "LATEST", path / "LATEST"):
        if not (path / MANIFEST_NAME).exists() and pointer.exists():
            return pointer.parent / pointer.read_text().strip()
    return path


def load(path: str | Path, dtype: torch.dtype = torch.float32, verify: str = "size") -> TeacherCache:
    """Open a finished teacher cache (see `resolve_cache_dir`), its files first checked against the manifest:
    sizes by default, `verify="full"` adds sha256."""
    given, path = path, resolve_cache_dir(path)
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.exists():
        found = sorted(p.parent for p in path.glob(f"*/*/{MANIFEST_NAME}")) + sorted(p.parent for p in path.glob(f"*/{MANIFEST_NAME}"))
        hint = f"; caches below it: {', '.join(map(str, found))}" if found else ""
        where = f"{given} (pulled into {path})" if is_remote(given) else str(path)
        raise CacheError(f"{where}: not a finished teacher cache (no {MANIFEST_NAME}){hint}")
    try:
        manifest = read_record(manifest_path)
    except DamagedFileError as err:
        raise CacheError(f"{err}; rerun the labelling command to redo it") from None
    if manifest.get("stage") != "label" or not manifest.get("complete"):
        raise CacheError(f"{manifest_path}: not a complete teacher cache (stage {manifest.get('stage')!r})")
    check_format_version(manifest, manifest_path)
    verify_cache(path, manifest, verify)
    tables = [read_shard(path / shard["file"]) for shard in manifest["shards"]]
    return TeacherCache(path, manifest, pa.concat_tables(tables), dtype)
