"""Typed configuration of the labeling stage (dataclass ← YAML ← `key=value` overrides)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from distill.cache.features import FeatureSet, TeacherDims
from distill.common.config_io import (
    ConfigError, NonEmptyStr, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, YamlConfig,
)
from distill.tasks import Task, task_of_head

FEATURES = ("logits", "topk", "cls", "hidden", "attention", "embedding", "relation")
StorageDtype = Literal["float16", "bfloat16", "float32"]
Precision = Literal["auto", "float32", "bfloat16", "float16"]


@dataclass
class LabelConfig(YamlConfig):
    teacher: NonEmptyStr | None = None  # fine-tuned AutoModelFor{Sequence,Token}Classification: hub name or directory
    tokenizer: NonEmptyStr | None = None  # default: the teacher's own; checked against the teacher's vocabulary
    check_vocab: bool = True  # refuse a tokenizer whose vocabulary size differs from the teacher's embeddings
    trust_remote_code: bool = False  # only for teachers whose code you trust
    max_length: PositiveInt = 128  # wordpieces per example (pairs truncated longest-first), as in GLUE fine-tuning
    # besides logits and input_ids: topk, cls (BERT-PKD), hidden (TinyBERT, DistilBERT), attention, embedding,
    # relation (MiniLM: one layer's input and W_q, W_k, W_v; attention and value relations recomputed in training)
    features: list[str] = field(default_factory=lambda: ["logits"])
    topk: PositiveInt = 10  # with topk on, full logits are not stored (k largest + the log-normaliser instead)
    # of the stored log-normaliser, which a tail-bucket KD loss must share; None = 2 for masked LMs, else 1
    topk_temperature: PositiveFloat | None = None
    # what the teacher outputs; auto = from its config's architectures and the input (`distill.tasks.teacher_task`)
    head: Literal["auto", "classification", "token_classification", "masked_lm", "none"] = "auto"
    # stored pre-softmax scores (heads × len²), or recomputed from stored h_{l-1} and W_q, W_k (O(len) on disk)
    attention: Literal["stored", "recompute"] = "stored"
    # Layer lists are checked against the teacher's depth once it is known (`layers`).
    cls_layers: list[NonNegativeInt] | None = None  # 0 = embeddings, 1..L encoder layers; None = 1..L
    hidden_layers: list[NonNegativeInt] | None = None  # None = 1..L
    attention_layers: list[PositiveInt] | None = None  # None = 1..L
    relation_layers: list[PositiveInt] | None = None  # None = the last layer (MiniLM)
    dtype: StorageDtype = "float16"  # storage dtype of float features
    quantize_hidden: bool = False  # int8 + a float32 scale per vector for cls/hidden/embedding
    precision: Precision = "auto"  # compute: auto = bf16 autocast on GPU (fp16 if no bf16), float32 on CPU
    batch_size: PositiveInt = 128  # most examples per forward pass
    max_batch_tokens: PositiveInt = 16384  # most padded tokens per forward pass (length buckets share it)
    shard_format: Literal["arrow", "parquet"] = "arrow"  # Arrow IPC stream: memory-mapped without decompression
    workers: PositiveInt | None = None  # teacher actors; None = one per GPU (or per cpus_per_actor), per 256 rows at most
    cpus_per_actor: PositiveFloat = 1.0
    gpus_per_actor: NonNegativeFloat | None = None  # None = 1 when the cluster has GPUs, else 0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.features = list(dict.fromkeys(["logits", *self.features]))
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown:
            raise ConfigError(f"unknown feature(s) {', '.join(map(str, unknown))}; choose from {', '.join(FEATURES)}",
                              "features")
        if self.max_batch_tokens < self.max_length:
            raise ConfigError(f"{self.max_batch_tokens!r} must be >= max_length ({self.max_length}): one full-length "
                              "example per batch", "max_batch_tokens")

    def wants(self, feature: str) -> bool:
        return feature in self.features

    def layers(self, feature: str, num_layers: int) -> list[int]:
        """The resolved layer list of a per-layer feature, validated against the teacher's depth."""
        chosen = getattr(self, f"{feature}_layers")
        lowest = 0 if feature in ("cls", "hidden") else 1
        default = [num_layers] if feature == "relation" else list(range(1, num_layers + 1))
        layers = default if chosen is None else sorted(set(int(x) for x in chosen))
        bad = [x for x in layers if not lowest <= x <= num_layers]
        if bad:
            raise ConfigError(f"{feature}_layers {bad} out of range {lowest}..{num_layers} for this teacher")
        return layers

    def feature_set(self, dims: TeacherDims, head: str | Task = "classification",
                    masked_input: bool = False) -> FeatureSet:
        """The cache columns this config asks for, for a teacher of `dims` whose head is `head` (or a task)."""
        layers = {name: self.layers(name, dims.num_layers) for name in ("cls", "hidden", "attention", "relation")}
        task = task_of_head(head, dims.num_labels)
        task.check_label_config(self, masked_input)
        return FeatureSet(dims, self.dtype, self.quantize_hidden, task.topk(self, dims), head=task.head,
                          embedding=self.wants("embedding"), attention_mode=self.attention, has_mlm_columns=masked_input,
                          topk_temperature=self.topk_temperature or task.topk_temperature,
                          **{f"{name}_layers": chosen if self.wants(name) else [] for name, chosen in layers.items()})

    def resolved(self) -> dict[str, Any]:
        """The options that change cached values (scheduling and paths excluded)."""
        data = dataclasses.asdict(self)
        # Batch sizes only move float rounding (padding is masked); the teacher enters by fingerprint.
        for key in ("teacher", "tokenizer", "workers", "cpus_per_actor", "gpus_per_actor", "check_vocab",
                    "trust_remote_code", "batch_size", "max_batch_tokens"):
            data.pop(key)
        if not self.wants("relation"):  # added later: caches without it keep the fingerprints they had
            data.pop("relation_layers")
        return data
