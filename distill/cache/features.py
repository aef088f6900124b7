"""The typed description of a cache's columns: which teacher outputs, which layers, which dtypes.

The labelling stage resolves a `FeatureSet` once per run and writes `describe()` into the
manifest; every reader rebuilds the same object with `FeatureSet.from_manifest()`, so the
trainer, the losses and the requirement check ask typed questions (`features.available("hidden")`,
`column_name("attention", 3)`) instead of parsing column names.

Layer numbering follows transformers' `hidden_states`: 0 = embedding output, i = output of
encoder layer i (1-based). Attention layers are 1-based encoder layers.

Format 3 adds the teacher's `head` (a classifier, a masked LM, or none: an encoder alone),
top-k targets that replace full logits (`topk_*`: indices as uint16 where the label space fits,
values in the storage dtype, and the full softmax's log-normaliser so a loss can price the tail),
masked-LM targets at masked positions only (`per_masked` layout, one entry per masked position,
with the corpus's `mlm_positions` / `mlm_labels`), and `attention_mode: recompute`: attention
layers are served from stored hidden states h_{l-1} and the teacher's query/key weights instead of
O(len²) columns (docs/design.md, "Store O(len), recompute O(len²)").

Format 4 adds token-classification teachers (`head: token_classification`) and the `per_word`
layout: one value per kept word (`word_starts`, the index in `input_ids` of each word's first
piece; `labels`, the gold tag id per word, −100 if unlabelled; `logits` [num_labels] per word,
the teacher's at the first piece).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from distill.cache.encoding import ARROW_TYPES, fixed_type

# Column kinds. "hidden" at layer 0 is the embedding output, stored as the `embedding` column.
KINDS = ("input_ids", "word_starts", "labels", "logits", "topk_indices", "topk_logits", "topk_logsumexp", "mlm_positions", "mlm_labels",
         "cls", "embedding", "hidden", "attention")
# Layouts: `fixed` = one [*shape] value per example; `per_token` = one [*shape] value per real
# token (list<...>); `square` = heads x len x len per example, row-major (list<value>);
# `per_masked` = one [*shape] value per masked position (list<...>, in `mlm_positions` order);
# `per_word` = one [*shape] value per kept word of a token task (list<...>, in word order).
LAYOUTS = ("fixed", "per_token", "square", "per_masked", "per_word")
HEADS = ("classification", "token_classification", "masked_lm", "none")
ATTENTION_MODES = ("stored", "recompute")
UINT16_LIMIT = 1 << 16  # top-k indices below this are stored as uint16


def column_name(kind: str, layer: int | None = None) -> str:
    """The Arrow column (and batch key) of a feature: `hidden_3`, `attention_1`, `cls`, `embedding`, ..."""
    if kind in ("hidden", "embedding") and layer == 0:
        return "embedding"
    if kind in ("hidden", "attention"):
        if layer is None:
            raise ValueError(f"{kind} needs a layer")
        return f"{kind}_{layer}"
    if kind not in KINDS:
        raise ValueError(f"unknown cache feature {kind!r} (known: {', '.join(KINDS)})")
    return kind


@dataclass(frozen=True)
class TeacherDims:
    """What the cache schema needs to know about a teacher, read from its config alone."""

    num_labels: int
    hidden_size: int
    num_layers: int
    num_heads: int
    vocab_size: int


@dataclass(frozen=True)
class Column:
    """One stored column: how to turn its flat values back into a padded tensor."""

    name: str
    kind: str
    layout: str  # fixed | per_token | square | per_masked | per_word
    dtype: str  # storage dtype: float16 | bfloat16 (as uint16 bits) | float32 | int8 | int32 | uint16
    shape: tuple[int, ...]  # per example (fixed), per token (per_token), (heads,) (square)
    layer: int | None = None
    scale: str | None = None  # int8 columns: the float32 per-vector scale column

    @property
    def arrow_type(self) -> pa.DataType:
        value = {"int32": pa.int32(), "uint16": pa.uint16()}.get(self.dtype) or ARROW_TYPES[self.dtype]
        if self.layout == "square":
            return pa.list_(value)
        inner = fixed_type(value, self.shape)
        return pa.list_(inner) if self.layout in ("per_token", "per_masked", "per_word") else inner

    def scale_column(self) -> "Column":
        return Column(self.scale, "scale", self.layout, "float32", self.shape[:-1], self.layer)

    def describe(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


@dataclass
class FeatureSet:
    dims: TeacherDims
    dtype: str = "float16"  # storage dtype of logits and attention
    quantize_hidden: bool = False  # int8 + per-vector scale for cls / hidden / embedding
    topk: int | None = None
    cls_layers: list[int] = field(default_factory=list)
    hidden_layers: list[int] = field(default_factory=list)
    attention_layers: list[int] = field(default_factory=list)
    embedding: bool = False
    head: str = "classification"  # the teacher's output: (token) classification logits, masked-LM logits, or none
    attention_mode: str = "stored"  # stored scores, or recompute from hidden h_{l-1} + the teacher's W_q, W_k
    topk_temperature: float = 1.0  # the temperature of `topk_logsumexp` (a tail-bucket loss must use it)
    legacy_logits: bool = False  # format 2: full logits were stored beside top-k
    has_mlm_columns: bool = False  # the input is a masked corpus (positions and true tokens are kept)

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"unknown teacher head {self.head!r} (known: {', '.join(HEADS)})")
        if self.attention_mode not in ATTENTION_MODES:
            raise ValueError(f"unknown attention mode {self.attention_mode!r} (known: {', '.join(ATTENTION_MODES)})")
        if self.head == "masked_lm" and not self.topk:
            raise ValueError("a masked-LM teacher's targets are stored as top-k (the full vocabulary is never stored)")
        if self.head == "token_classification" and self.topk:
            raise ValueError("a token-classification teacher stores full logits per word (top-k is for large label spaces)")

    @property
    def stores_logits(self) -> bool:
        """Full logits per example (per word for token tasks): classifiers without top-k (and every format-2 cache)."""
        return self.per_word or (self.head == "classification" and (not self.topk or self.legacy_logits))

    @property
    def per_word(self) -> bool:
        """A token task: word starts, per-word gold tags and per-word logits."""
        return self.head == "token_classification"

    @property
    def task(self) -> str:
        """classification, regression (a classifier head with one output, STS-B) or what the head says."""
        if self.head == "classification":
            return "regression" if self.dims.num_labels == 1 else "classification"
        return self.head

    @property
    def masked(self) -> bool:
        """Rows carry masked positions and their true tokens (corpus input)."""
        return self.head == "masked_lm" or self.has_mlm_columns

    @property
    def stored_hidden_layers(self) -> list[int]:
        """Hidden layers with a column: those asked for, plus each recomputed attention layer's input."""
        extra = {layer - 1 for layer in self.attention_layers} if self.attention_mode == "recompute" else set()
        return sorted(set(self.hidden_layers) | extra)

    @property
    def stored_attention_layers(self) -> list[int]:
        return self.attention_layers if self.attention_mode == "stored" else []

    @property
    def topk_index_dtype(self) -> str:
        space = self.dims.vocab_size if self.head == "masked_lm" else self.dims.num_labels
        return "uint16" if space <= UINT16_LIMIT and not self.legacy_logits else "int32"

    @property
    def needs_hidden_states(self) -> bool:
        return bool(self.cls_layers or self.stored_hidden_layers or self.embedding)

    @property
    def stores_embedding(self) -> bool:
        """The embedding output (hidden state 0) is stored, asked for as `embedding` or as hidden layer 0."""
        return self.embedding or 0 in self.stored_hidden_layers

    @property
    def hidden_dtype(self) -> str:
        return "int8" if self.quantize_hidden else self.dtype

    def available(self, kind: str) -> set[int]:
        """Layers of `kind` the cache holds (`hidden` includes 0 when the embedding output is stored)."""
        if kind == "cls":
            return set(self.cls_layers)
        if kind == "hidden":
            return set(self.stored_hidden_layers) | ({0} if self.stores_embedding else set())
        if kind == "attention":
            return set(self.attention_layers)
        if kind == "embedding":
            return {0} if self.stores_embedding else set()
        if kind == "input_ids":
            return {0}
        if kind == "logits":
            return {0} if self.stores_logits else set()
        if kind in ("topk_indices", "topk_logits", "topk"):
            return {0} if self.topk else set()
        if kind == "mlm_topk":
            return {0} if self.topk and self.head == "masked_lm" else set()
        if kind == "class_topk":
            return {0} if self.topk and self.head == "classification" else set()
        if kind == "mlm":
            return {0} if self.masked else set()
        if kind == "words":
            return {0} if self.per_word else set()
        if kind == "classes":  # a classifier over two or more labels: class ids, softmax targets
            return {0} if self.head in ("classification", "token_classification") and self.dims.num_labels > 1 else set()
        if kind == "score":  # a regression teacher (one output): its score is the target
            return {0} if self.task == "regression" and self.stores_logits else set()
        if kind == "predictions":
            return {0} if self.stores_logits or (self.topk and self.head == "classification") else set()
        raise ValueError(f"unknown cache feature {kind!r}")

    # -- columns ----------------------------------------------------------------------------
    def _hidden(self, kind: str, layout: str, shape: tuple[int, ...], layer: int | None = None) -> list[Column]:
        name = column_name(kind, layer)
        column = Column(name, kind, layout, self.hidden_dtype, shape, layer, f"{name}_scale" if self.quantize_hidden else None)
        return [column, column.scale_column()] if column.scale else [column]

    def columns(self) -> list[Column]:
        """Every stored column in schema order, int8 scale columns right after their values."""
        hidden = self.dims.hidden_size
        out = [Column("input_ids", "input_ids", "per_token", "int32", ())]
        if self.per_word:
            out += [Column("word_starts", "word_starts", "per_word", "int32", ()),
                    Column("labels", "labels", "per_word", "int32", ())]
        if self.stores_logits:
            out.append(Column("logits", "logits", "per_word" if self.per_word else "fixed", self.dtype,
                              (self.dims.num_labels,)))
        if self.masked:
            out += [Column("mlm_positions", "mlm_positions", "per_masked", "int32", ()),
                    Column("mlm_labels", "mlm_labels", "per_masked", "int32", ())]
        if self.topk:
            layout = "per_masked" if self.head == "masked_lm" else "fixed"
            out += [Column("topk_indices", "topk_indices", layout, self.topk_index_dtype, (self.topk,)),
                    Column("topk_logits", "topk_logits", layout, self.dtype, (self.topk,))]
            if not self.legacy_logits:
                out.append(Column("topk_logsumexp", "topk_logsumexp", layout, "float32", ()))
        if self.cls_layers:
            out += self._hidden("cls", "fixed", (len(self.cls_layers), hidden))
        if self.stores_embedding:
            out += self._hidden("embedding", "per_token", (hidden,), 0)
        for layer in self.stored_hidden_layers:
            if layer != 0:
                out += self._hidden("hidden", "per_token", (hidden,), layer)
        for layer in self.stored_attention_layers:
            out.append(Column(column_name("attention", layer), "attention", "square", self.dtype,
                              (self.dims.num_heads,), layer))
        return out

    def fields(self) -> list[pa.Field]:
        return [pa.field(c.name, c.arrow_type) for c in self.columns()]

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns()]

    # -- manifest -------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The manifest's account of the columns: enough to decode them without this code."""
        if self.legacy_logits:
            return self._describe_v2()
        return {
            **self._describe_v2(),
            "head": self.head,
            "has_mlm_columns": self.masked,
            "topk_temperature": self.topk_temperature if self.topk else None,
            "topk_logsumexp": "log sum_j exp(z_j / topk_temperature) over the full label space, float32"
            if self.topk else None,
            "attention_mode": self.attention_mode,
            "attention_recompute": ("scores of layer l = (h_{l-1} W_q^T + b_q)(h_{l-1} W_k^T + b_k)^T / sqrt(head_dim) per "
                                    "head, from hidden_{l-1} and teacher_files/attention_qk.safetensors")
            if self.attention_mode == "recompute" and self.attention_layers else None,
            "stored_hidden_layers": self.stored_hidden_layers,
            "columns": self.column_names(),
            "layout": {c.name: c.describe() for c in self.columns()},
        }

    def _describe_v2(self) -> dict[str, Any]:
        return {
            **asdict(self.dims),
            "dtype": self.dtype,
            "hidden_dtype": self.hidden_dtype,
            "quantize_hidden": self.quantize_hidden,
            "int8_scale": "per vector, float32, in <column>_scale" if self.quantize_hidden else None,
            "topk": self.topk,
            "cls_layers": self.cls_layers,
            "hidden_layers": self.hidden_layers,
            "attention_layers": self.attention_layers,
            "attention_layout": "list per example: heads x len x len, row-major, pre-softmax, unmasked",
            "embedding": self.embedding,
            "columns": self.column_names(),
            "layout": {c.name: c.describe() for c in self.columns()},
        }

    @classmethod
    def from_manifest(cls, block: dict[str, Any]) -> "FeatureSet":
        """Rebuild the writer's feature set from a manifest's `features` block."""
        dims = TeacherDims(**{k: int(block[k]) for k in TeacherDims.__dataclass_fields__})
        legacy = "head" not in block  # format 2: a classifier, full logits beside top-k, stored attention
        return cls(dims=dims, dtype=block["dtype"], quantize_hidden=bool(block["quantize_hidden"]),
                   topk=block.get("topk"), cls_layers=list(block["cls_layers"]),
                   hidden_layers=list(block["hidden_layers"]), attention_layers=list(block["attention_layers"]),
                   embedding=bool(block["embedding"]), head=block.get("head", "classification"),
                   attention_mode=block.get("attention_mode", "stored"),
                   topk_temperature=float(block.get("topk_temperature") or 1.0), legacy_logits=legacy,
                   has_mlm_columns=bool(block.get("has_mlm_columns", False)))
