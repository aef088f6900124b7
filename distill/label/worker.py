"""The teacher worker (Ray Data `map_batches`, via `distill.common.shard_map`): one teacher loaded once per worker
and stage; each call labels whole shards, streamed bucket by bucket into one atomically committed cache shard so
memory stays bounded."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from distill import attention_capture as attention
from distill.cache.features import FeatureSet
from distill.cache.writer import encode_batch
from distill.common.batching import length_buckets, padded_tokens
from distill.common.hardware import worker_device
from distill.common.labels import LabelSpace
from distill.errors import InputError
from distill.label.config import LabelConfig
from distill.label.teacher import load_model, load_tokenizer
from distill.storage.fingerprint import hash_file
from distill.storage.shards import read_shard
from distill.storage.stage_dir import StageDir
from distill.words import align_words

log = logging.getLogger(__name__)
KEPT_COLUMNS = ("uid", "source_id", "aug_index", "label")  # copied from the augmented rows


def autocast_for(precision: str, device: str):
    """Resolved compute precision: `auto` = bf16 autocast on GPUs that have it (else fp16), fp32 on CPU."""
    if precision == "auto":
        if not device.startswith("cuda"):
            return "float32", nullcontext
        precision = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if precision == "float32":
        return "float32", nullcontext
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float16
    return precision, lambda: torch.autocast(device_type=device.split(":")[0], dtype=dtype)


class TeacherLabeler:
    def __init__(self, config: LabelConfig, model_dir: str, tokenizer_dir: str, features: FeatureSet, input_dir: str,
                 input_shards: dict[str, dict], stage_dir: StageDir, is_pair: bool,
                 label_space: LabelSpace | None = None, cpu_threads: int | None = None) -> None:
        self.device = worker_device("auto")  # the GPU Ray assigned this worker, else CPU
        if self.device == "cpu" and cpu_threads:
            torch.set_num_threads(cpu_threads)
        self.config = config
        self.features = features
        self.input_dir = Path(input_dir)
        self.input_shards = input_shards
        self.stage_dir = stage_dir
        self.is_pair = is_pair
        self.label_space = label_space
        self.tokenizer = load_tokenizer(Path(tokenizer_dir), config.trust_remote_code)
        implementation = attention.register() if features.stored_attention_layers else "sdpa"
        self.model = load_model(Path(model_dir), self.device, implementation, config.trust_remote_code,
                                features.teacher_task)
        self.precision, self.autocast = autocast_for(config.precision, self.device)
        self.forward_batches = 0

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        records = [self.label_shard(name) for name in batch["file"].tolist()]
        return {"file": np.array([r.file for r in records]), "rows": np.array([r.rows for r in records])}

    def _read_input(self, name: str) -> pa.Table:
        path = self.input_dir / name
        expected = self.input_shards[name]["sha256"]
        if hash_file(path) != expected:
            raise RuntimeError(f"{path}: sha256 does not match the augmented manifest; rerun the augment stage")
        return read_shard(path)

    def tokenize(self, table: pa.Table) -> tuple[list[list[int]], list[list[int]] | None]:
        """Input ids, and segment ids for pairs when the tokenizer uses them; a corpus shard's ids as they are."""
        segments = self.is_pair and "token_type_ids" in self.tokenizer.model_input_names
        if "input_ids" in table.column_names:
            ids = table.column("input_ids").to_pylist()
            return ids, table.column("token_type_ids").to_pylist() if segments else None
        texts_a = table.column("text_a").to_pylist()
        texts_b = table.column("text_b").to_pylist() if self.is_pair else None
        encoded = self.tokenizer(
            texts_a, texts_b, truncation=True, max_length=self.config.max_length, padding=False,
            return_attention_mask=False, return_token_type_ids=segments,
        )
        return encoded["input_ids"], encoded["token_type_ids"] if segments else None

    def tokenize_words(self, table: pa.Table, source: str) -> tuple[list[list[int]], tuple[list, list], dict]:
        """A token task's rows: input ids, and per kept word its first piece and gold tag id (−100 when
        the row is unlabelled); words cut by truncation are dropped with their tags and counted."""
        sentences = table.column("tokens").to_pylist()
        aligned = align_words(self.tokenizer, sentences, self.config.max_length)
        tags = table.column("tags").to_pylist() if "tags" in table.column_names else [None] * len(sentences)
        starts, labels = [], []
        for row, (words, row_tags, kept) in enumerate(zip(sentences, tags, aligned.kept), start=1):
            starts.append(np.asarray(aligned.word_starts[row - 1], dtype=np.int32))
            if row_tags is None:
                labels.append(np.full(len(kept), -100, dtype=np.int32))
                continue
            if len(row_tags) != len(words):
                raise InputError(f"{source}: row {row}: {len(words)} words but {len(row_tags)} tags")
            ids = self.label_space.ids([row_tags[w] for w in kept], [row] * len(kept), source, "tag") \
                if self.label_space is not None else [row_tags[w] for w in kept]
            labels.append(np.asarray([-100 if i is None else i for i in ids], dtype=np.int32))
        counts = {"words": aligned.words, "words_truncated": aligned.truncated,
                  "words_without_pieces": aligned.without_pieces}
        return aligned.input_ids, (starts, labels), counts

    def label_shard(self, name: str):
        started = time.perf_counter()
        table = self._read_input(name)
        words, word_counts = None, {}
        if self.features.teacher_task.words:
            ids, words, word_counts = self.tokenize_words(table, str(self.input_dir / name))
            segments = None
        else:
            ids, segments = self.tokenize(table)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        buckets = length_buckets(lengths, self.config.batch_size, self.config.max_batch_tokens)
        kept = self._gold_ids(table.select([c for c in KEPT_COLUMNS if c in table.column_names]), name)
        masked = tuple([np.asarray(p, dtype=np.int64) for p in table.column(name).to_pylist()]
                       for name in ("mlm_positions", "mlm_labels")) if self.features.masked else None
        schema = pa.schema(list(kept.schema) + self.features.fields())
        out_name = Path(name).stem + "." + self.config.shard_format
        calls_before = self.forward_batches
        extra = {"input_shard": name, "real_tokens": int(lengths.sum()),
                 "padded_tokens": padded_tokens(lengths, buckets), "forward_batches": len(buckets),
                 "precision": self.precision, "device": self.device, **word_counts}
        if word_counts.get("words_truncated"):
            log.info("%s: %d word(s) cut by max_length %d dropped with their tags", name, word_counts["words_truncated"],
                     self.config.max_length)
        batches = self._batches(kept, ids, segments, lengths, buckets, schema, extra, started, masked, words)
        record = self.stage_dir.commit_shard_batches(batches, schema, out_name, extra)
        seconds = record.extra["seconds"]
        log.info("%s: %d rows, %d forward passes, %.1f rows/s", out_name, record.rows,
                 self.forward_batches - calls_before, record.rows / max(seconds, 1e-9))
        return record

    def _gold_ids(self, kept: pa.Table, name: str) -> pa.Table:
        """String gold labels become the teacher's class ids (its label2id), as the trainer's losses read them."""
        if self.label_space is None or "label" not in kept.column_names or not pa.types.is_string(kept.schema.field("label").type):
            return kept
        values = kept.column("label").to_pylist()
        ids = self.label_space.ids(values, list(range(1, len(values) + 1)), str(self.input_dir / name))
        return kept.set_column(kept.schema.get_field_index("label"), "label", pa.array(ids, type=pa.int64()))

    def _batches(self, kept, ids, segments, lengths, buckets, schema, extra: dict, started: float,
                 masked=None, words=None) -> Iterator[pa.RecordBatch]:
        """Forward each bucket and yield its rows; records the shard's labeling time in `extra` at the end."""
        for rows in buckets:
            picked_ids = [ids[row] for row in rows.tolist()]
            input_ids = _padded(picked_ids, self.tokenizer.pad_token_id or 0)
            mask = _padded([[1] * len(x) for x in picked_ids])
            token_types = _padded([segments[row] for row in rows.tolist()]) if segments is not None else None
            mlm, tagged = (tuple([part[r] for r in rows.tolist()] for part in pair) if pair else None
                           for pair in (masked, words))
            columns = self.forward(input_ids, mask, token_types, mlm, tagged)
            picked = kept.take(pa.array(rows))
            arrays = [picked.column(f.name).combine_chunks() if f.name in picked.column_names else columns[f.name]
                      for f in schema]
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)
        extra["seconds"] = round(time.perf_counter() - started, 3)

    @torch.inference_mode()
    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor, token_types: torch.Tensor | None,
                mlm: tuple[list[np.ndarray], list[np.ndarray]] | None = None,
                words: tuple[list[np.ndarray], list[np.ndarray]] | None = None) -> dict[str, pa.Array]:
        layers = self.features.stored_attention_layers
        recorder = attention.ScoreRecorder(layers) if layers else nullcontext()
        inputs = dict(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
                      token_type_ids=None if token_types is None else token_types.to(self.device))
        extra = {"mlm_positions": _padded(mlm[0], -1)} if mlm else {}
        with recorder, self.autocast():
            logits, mlm_logits, hidden_states = self.features.teacher_task.forward(
                self.model, inputs, self.features.needs_hidden_states, extra)
        if layers:
            recorder.check(self.features.dims.num_layers)
        self.forward_batches += 1
        return encode_batch(self.features, input_ids, mask, mlm_logits if logits is None else logits, hidden_states,
                            recorder.scores if layers else None, mlm, words)


def _padded(rows: list, fill: int = 0) -> torch.Tensor:
    """Per-row integer values as one [B, width] tensor, `fill` past each row's end."""
    padded = torch.full((len(rows), max((len(r) for r in rows), default=0)), fill, dtype=torch.long)
    for i, row in enumerate(rows):
        padded[i, : len(row)] = torch.from_numpy(np.asarray(row, dtype=np.int64))
    return padded
