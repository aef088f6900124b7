"""Typed configuration of the labeling stage (dataclass ← YAML ← `key=value` overrides)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from distill.cache.features import FeatureSet, TeacherDims
from distill.common.config_io import (
    ConfigError, NonEmptyStr, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, YamlConfig,
)

FEATURES = ("logits", "topk", "cls", "hidden", "attention", "embedding")
StorageDtype = Literal["float16", "bfloat16", "float32"]
Precision = Literal["auto", "float32", "bfloat16", "float16"]
STORAGE_DTYPES = get_args(StorageDtype)
PRECISIONS = get_args(Precision)


HEADS = ("auto", "classification", "token_classification", "masked_lm", "none")
TOKEN_TASK = "token_classification"  # the augmented manifest's `task` of tagged words (absent = sequence)


@dataclass
class LabelConfig(YamlConfig):
    teacher: NonEmptyStr | None = None  # fine-tuned AutoModelFor{Sequence,Token}Classification: hub name or directory
    tokenizer: NonEmptyStr | None = None  # default: the teacher's own; checked against the teacher's vocabulary
    check_vocab: bool = True  # refuse a tokenizer whose vocabulary size differs from the teacher's embeddings
    trust_remote_code: bool = False  # only for teachers whose code you trust
    max_length: PositiveInt = 128  # wordpieces per example (pairs truncated longest-first), as in GLUE fine-tuning
    # What to cache besides logits and input_ids (always kept): topk (large label spaces),
    # cls (per-layer [CLS], BERT-PKD), hidden (token states, TinyBERT / DistilBERT cosine),
    # attention (pre-softmax scores, TinyBERT), embedding (embedding-layer output, TinyBERT).
    features: list[str] = field(default_factory=lambda: ["logits"])
    topk: PositiveInt = 10  # with topk on, full logits are not stored (k largest + the log-normaliser instead)
    # temperature of the stored log-normaliser, which a tail-bucket KD loss must share;
    # None = 2 for masked-LM teachers (DistilBERT's T), else 1
    topk_temperature: PositiveFloat | None = None
    # what the teacher outputs: auto = from its config's architectures for a masked corpus
    # (…ForMaskedLM → masked_lm, else none: an encoder, TinyBERT general distillation), and for task
    # data a token classifier (…ForTokenClassification, or tagged-word input) or else a sequence classifier
    head: Literal["auto", "classification", "token_classification", "masked_lm", "none"] = "auto"
    # attention targets: stored pre-softmax scores (heads × len² per example), or recompute them at
    # training time from the stored layer inputs h_{l-1} and the teacher's W_q, W_k (O(len) on disk)
    attention: Literal["stored", "recompute"] = "stored"
    # Layer lists are checked against the teacher's depth once it is known (`layers`).
    cls_layers: list[NonNegativeInt] | None = None  # 0 = embeddings, 1..L encoder layers; None = 1..L
    hidden_layers: list[NonNegativeInt] | None = None  # None = 1..L
    attention_layers: list[PositiveInt] | None = None  # None = 1..L
    dtype: StorageDtype = "float16"  # storage dtype of float features
    quantize_hidden: bool = False  # int8 + a float32 scale per vector for cls/hidden/embedding
    precision: Precision = "auto"  # compute: auto = bf16 autocast on GPU (fp16 if no bf16), float32 on CPU
    batch_size: PositiveInt = 128  # most examples per forward pass
    max_batch_tokens: PositiveInt = 16384  # most padded tokens per forward pass (length buckets share it)
    shard_format: Literal["arrow", "parquet"] = "arrow"  # Arrow IPC stream: memory-mapped without decompression
    workers: PositiveInt | None = None  # teacher actors; None = one per GPU, else one per `cpus_per_actor` CPUs
    cpus_per_actor: PositiveFloat = 1.0
    gpus_per_actor: NonNegativeFloat | None = None  # None = 1 when the cluster has GPUs, else 0

    def __post_init__(self) -> None:
        self.features = list(dict.fromkeys(["logits", *self.features]))
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown:
            raise ConfigError(f"unknown feature(s) {', '.join(map(str, unknown))}; choose from {', '.join(FEATURES)}",
                              "features")
        enums = (("dtype", STORAGE_DTYPES), ("precision", PRECISIONS), ("shard_format", ("arrow", "parquet")),
                 ("head", HEADS), ("attention", ("stored", "recompute")))
        for name, allowed in enums:
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{getattr(self, name)!r} is not allowed (choose {', '.join(allowed)})", name)
        for name in ("max_length", "batch_size", "max_batch_tokens", "topk"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{getattr(self, name)!r} must be >= 1", name)
        if self.max_batch_tokens < self.max_length:
            raise ConfigError(f"{self.max_batch_tokens!r} must be >= max_length ({self.max_length}): one full-length "
                              "example per batch", "max_batch_tokens")

    def wants(self, feature: str) -> bool:
        return feature in self.features

    def layers(self, feature: str, num_layers: int) -> list[int]:
        """The resolved layer list of a per-layer feature, validated against the teacher's depth."""
        chosen = getattr(self, f"{feature}_layers")
        lowest = 0 if feature in ("cls", "hidden") else 1
        layers = list(range(1, num_layers + 1)) if chosen is None else sorted(set(int(x) for x in chosen))
        bad = [x for x in layers if not lowest <= x <= num_layers]
        if bad:
            raise ConfigError(f"{feature}_layers {bad} out of range {lowest}..{num_layers} for this teacher")
        return layers

    def resolved_head(self, architectures: list[str], corpus: bool, task: str | None = None) -> str:
        """The teacher's head: as configured, or from its config (`auto`, see `head`); `task` is the
        input's (the augmented manifest's `task`), when known."""
        if self.head != "auto":
            return self.head
        if not corpus:
            tagger = any(a.endswith("ForTokenClassification") for a in architectures) or task == TOKEN_TASK
            return TOKEN_TASK if tagger else "classification"
        return "masked_lm" if any(a.endswith(("ForMaskedLM", "ForPreTraining")) for a in architectures) else "none"

    def feature_set(self, dims: TeacherDims, head: str = "classification", masked_input: bool = False) -> FeatureSet:
        """The cache columns this config asks for, for a teacher of `dims` with `head`."""
        for name in ("cls", "hidden", "attention"):
            self.layers(name, dims.num_layers)  # a bad layer list is an error even if the feature is off
        if head == "masked_lm" and not masked_input:
            raise ConfigError("a masked-LM teacher labels masked positions: give it a masked corpus "
                              "(pipelines/general_distill_data.py), or a classifier for task data", "head")
        if head == "none" and not masked_input and not self.wants("hidden") and not self.wants("attention"):
            raise ConfigError("an encoder-only teacher has no logits: cache hidden/attention/embedding features, "
                              "or fine-tune a classifier (pipelines/finetune_teacher.py)", "head")
        if head == TOKEN_TASK and self.wants("topk"):
            raise ConfigError("a token-classification teacher stores full logits per word; drop the topk feature",
                              "features")
        if head == TOKEN_TASK and masked_input:
            raise ConfigError("a token-classification teacher labels tagged words, not a masked corpus", "head")
        topk = None
        if head == "masked_lm":
            topk = min(self.topk, dims.vocab_size)  # always top-k: a vocabulary of logits per position is never stored
        elif head == "classification" and self.wants("topk"):
            topk = min(self.topk, dims.num_labels)
        temperature = self.topk_temperature or (2.0 if head == "masked_lm" else 1.0)
        return FeatureSet(
            dims=dims,
            dtype=self.dtype,
            quantize_hidden=self.quantize_hidden,
            topk=topk,
            head=head,
            attention_mode=self.attention,
            topk_temperature=temperature,
            has_mlm_columns=masked_input,
            cls_layers=self.layers("cls", dims.num_layers) if self.wants("cls") else [],
            hidden_layers=self.layers("hidden", dims.num_layers) if self.wants("hidden") else [],
            attention_layers=self.layers("attention", dims.num_layers) if self.wants("attention") else [],
            embedding=self.wants("embedding"),
        )

    def resolved(self) -> dict[str, Any]:
        """The options that change cached values (scheduling and paths excluded)."""
        data = dataclasses.asdict(self)
        # Batch sizes only move float rounding (padding is masked); the teacher enters by fingerprint.
        for key in ("teacher", "tokenizer", "workers", "cpus_per_actor", "gpus_per_actor", "check_vocab",
                    "trust_remote_code", "batch_size", "max_batch_tokens"):
            data.pop(key)
        return data
