"""The teacher actor: one teacher per actor, loaded once; each call labels whole shards.

Used with Ray Data `map_batches` over the list of input shards (load in `__init__`, work in
`__call__`). Each shard is tokenized, bucketed by length, run through the teacher under
`torch.inference_mode` (autocast on GPU), and streamed batch by batch into one atomically
committed cache shard, so memory stays bounded even for per-token features.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from distill import attention
from distill.batching import length_buckets, padded_tokens
from distill.cache.features import FeatureSet
from distill.cache.writer import encode_batch
from distill.common.hardware import worker_device
from distill.common.models import at_masked, masked_lm_head
from distill.common.labels import LabelSpace
from distill.common.text_inputs import InputError
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
    def __init__(
        self,
        config: LabelConfig,
        model_dir: str,
        tokenizer_dir: str,
        features: FeatureSet,
        input_dir: str,
        input_shards: dict[str, dict],
        stage_dir: StageDir,
        is_pair: bool,
        label_space: LabelSpace | None = None,
        cpu_threads: int | None = None,
    ) -> None:
        self.device = worker_device("auto")  # the GPU Ray assigned this actor, else CPU
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
        self.model = load_model(Path(model_dir), self.device, implementation, config.trust_remote_code, features.head)
        self.precision, self.autocast = autocast_for(config.precision, self.device)
        self.forward_batches = 0

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        done = {"file": [], "rows": []}
        for name in batch["file"].tolist():
            record = self.label_shard(name)
            done["file"].append(record.file)
            done["rows"].append(record.rows)
        return {key: np.array(values) for key, values in done.items()}

    def _read_input(self, name: str) -> pa.Table:
        path = self.input_dir / name
        expected = self.input_shards[name]["sha256"]
        if hash_file(path) != expected:
            raise RuntimeError(f"{path}: sha256 does not match the augmented manifest; rerun the augment stage")
        return read_shard(path)

    def tokenize(self, table: pa.Table) -> tuple[list[list[int]], list[list[int]] | None]:
        """Input ids, and segment ids for pairs when the tokenizer's models use them (BERT, not RoBERTa).
        A corpus shard is tokenised already (packed, masked sequences): its ids are used as they are."""
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
        if self.features.per_word:
            ids, words, word_counts = self.tokenize_words(table, str(self.input_dir / name))
            segments = None
        else:
            ids, segments = self.tokenize(table)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        buckets = length_buckets(lengths, self.config.batch_size, self.config.max_batch_tokens)
        kept = self._gold_ids(table.select([c for c in KEPT_COLUMNS if c in table.column_names]), name)
        masked = None
        if self.features.masked:
            masked = ([np.asarray(p, dtype=np.int64) for p in table.column("mlm_positions").to_pylist()],
                      [np.asarray(p, dtype=np.int64) for p in table.column("mlm_labels").to_pylist()])
        schema = pa.schema(list(kept.schema) + self.features.fields())
        out_name = Path(name).stem + "." + self.config.shard_format
        calls_before = self.forward_batches
        extra = {
            "input_shard": name,
            "real_tokens": int(lengths.sum()),
            "padded_tokens": padded_tokens(lengths, buckets),
            "forward_batches": len(buckets),
            "precision": self.precision,
            "device": self.device,
            **word_counts,
        }
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
        """String gold labels become the teacher's class ids (through its label2id), so the cache's
        `label` column is what the trainer's cross-entropy compares logits with."""
        if self.label_space is None or "label" not in kept.column_names or not pa.types.is_string(kept.schema.field("label").type):
            return kept
        values = kept.column("label").to_pylist()
        ids = self.label_space.ids(values, list(range(1, len(values) + 1)), str(self.input_dir / name))
        return kept.set_column(kept.schema.get_field_index("label"), "label", pa.array(ids, type=pa.int64()))

    def _batches(self, kept, ids, segments, lengths, buckets, schema, extra: dict, started: float,
                 masked=None, words=None) -> Iterator[pa.RecordBatch]:
        """Forward each bucket and yield its rows; records the shard's labeling time in `extra` at the end."""
        pad = self.tokenizer.pad_token_id or 0
        for rows in buckets:
            width = int(lengths[rows].max())
            input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            token_types = torch.zeros((len(rows), width), dtype=torch.long) if segments is not None else None
            for i, row in enumerate(rows.tolist()):
                input_ids[i, : lengths[row]] = torch.tensor(ids[row])
                mask[i, : lengths[row]] = 1
                if segments is not None:
                    token_types[i, : lengths[row]] = torch.tensor(segments[row])
            mlm = ([masked[0][r] for r in rows.tolist()], [masked[1][r] for r in rows.tolist()]) if masked else None
            tagged = ([words[0][r] for r in rows.tolist()], [words[1][r] for r in rows.tolist()]) if words else None
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
        with recorder, self.autocast():
            if self.features.head == "masked_lm":
                logits, hidden_states = masked_lm_logits(self.model, inputs, mlm[0], self.features.needs_hidden_states)
            else:
                outputs = self.model(**inputs, output_hidden_states=self.features.needs_hidden_states)
                logits = outputs.logits if self.features.head in ("classification", "token_classification") else None
                hidden_states = outputs.hidden_states
        if layers:
            recorder.check(self.features.dims.num_layers)
        self.forward_batches += 1
        return encode_batch(self.features, input_ids, mask, logits, hidden_states,
                            recorder.scores if layers else None, mlm, words)


def masked_lm_logits(model, inputs: dict, positions: list[np.ndarray], hidden_states: bool):
    """Vocabulary logits [N, V] at the batch's N masked positions (row-major), and the hidden states.

    The LM head runs only where a target is kept: at 128 tokens and 15 % masking that is ~20 of 128
    positions, so a [B, T, 30 522] logit tensor is never built (BERT's `cls`, RoBERTa's `lm_head`;
    other heads run in full and are gathered)."""
    padded = torch.full((len(positions), max((len(p) for p in positions), default=0)), -1, dtype=torch.long)
    for row, p in enumerate(positions):
        padded[row, : len(p)] = torch.from_numpy(np.asarray(p, dtype=np.int64))
    head = masked_lm_head(model)
    if head is None:
        outputs = model(**inputs, output_hidden_states=True)
        return at_masked(outputs.logits, padded.to(outputs.logits.device)), outputs.hidden_states
    outputs = model.base_model(**inputs, output_hidden_states=hidden_states)
    sequence = outputs.last_hidden_state
    return head(at_masked(sequence, padded.to(sequence.device))), outputs.hidden_states
