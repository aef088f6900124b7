"""The typed description of a cache's columns: which teacher outputs, which layers, which dtypes.

The labelling stage writes `describe()` into the manifest; readers rebuild it with `from_manifest()` and ask
typed questions instead of parsing column names. The teacher's task decides the prediction columns. Layers
follow transformers' `hidden_states` (0 = embedding output); attention layers are 1-based. Format history:
distill/cache/format.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from distill.cache.encoding import ARROW_TYPES, fixed_type
from distill.tasks import Task, task_of_head

# Column kinds. "hidden" at layer 0 is the embedding output, stored as the `embedding` column.
KINDS = ("input_ids", "word_starts", "labels", "logits", "topk_indices", "topk_logits", "topk_logsumexp", "mlm_positions", "mlm_labels",
         "cls", "embedding", "hidden", "attention")
# Layouts: `fixed` = one [*shape] value per example; `per_token`, `per_masked`, `per_word` = one per
# real token, masked position or kept word (list<...>); `square` = heads x len x len, row-major (list<value>).
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
    # MiniLM: self-attention and value relations of these layers, always recomputed from h_{l-1} and W_q, W_k, W_v
    relation_layers: list[int] = field(default_factory=list)
    embedding: bool = False
    head: str = "classification"  # the teacher's head (`distill.tasks.HEADS`): what it predicts, if anything
    attention_mode: str = "stored"  # stored scores, or recompute from hidden h_{l-1} + the teacher's W_q, W_k
    topk_temperature: float = 1.0  # the temperature of `topk_logsumexp` (a tail-bucket loss must use it)
    legacy_logits: bool = False  # format 2: full logits were stored beside top-k
    has_mlm_columns: bool = False  # the input is a masked corpus (positions and true tokens are kept)

    def __post_init__(self) -> None:
        if self.attention_mode not in ATTENTION_MODES:
            raise ValueError(f"unknown attention mode {self.attention_mode!r} (known: {', '.join(ATTENTION_MODES)})")
        self.teacher_task.check_topk(self.topk)

    @property
    def teacher_task(self) -> Task:
        """The task of the teacher's head (`distill.tasks`); a classifier with one output is regression."""
        return task_of_head(self.head, self.dims.num_labels)

    @property
    def task(self) -> str:
        return self.teacher_task.name

    @property
    def stores_logits(self) -> bool:
        """Full logits per example or word: classifiers without top-k (and every format-2 cache)."""
        return self.teacher_task.logits_layout is not None and (not self.topk or self.legacy_logits)

    @property
    def per_word(self) -> bool:
        """A token task: word starts, per-word gold tags and per-word logits."""
        return self.teacher_task.words

    @property
    def masked(self) -> bool:
        """Rows carry masked positions and their true tokens (corpus input)."""
        return self.teacher_task.masked or self.has_mlm_columns

    @property
    def projection_layers(self) -> dict[int, tuple[str, ...]]:
        """Layers recomputed from their input, with the teacher projections each needs (`teacher_files/`)."""
        out = {layer: ("query", "key") for layer in self.attention_layers} if self.attention_mode == "recompute" else {}
        return {**out, **{layer: ("query", "key", "value") for layer in self.relation_layers}}

    @property
    def stored_hidden_layers(self) -> list[int]:
        """Hidden layers with a column: those asked for, plus each recomputed layer's input."""
        return sorted(set(self.hidden_layers) | {layer - 1 for layer in self.projection_layers})

    @property
    def stored_attention_layers(self) -> list[int]:
        return self.attention_layers if self.attention_mode == "stored" else []

    @property
    def topk_index_dtype(self) -> str:
        space = self.teacher_task.output_size(self.dims)
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
        """Layers of `kind` the cache holds (`hidden` includes 0 for the embedding output); {0} or {} if unlayered."""
        task = self.teacher_task
        class_topk = self.topk and task.topk_layout == "fixed"
        found = {"cls": set(self.cls_layers), "attention": set(self.attention_layers),
                 "hidden": set(self.stored_hidden_layers) | ({0} if self.stores_embedding else set()),
                 "relation": set(self.relation_layers),
                 "embedding": self.stores_embedding, "input_ids": True, "logits": self.stores_logits,
                 "topk_indices": self.topk, "topk_logits": self.topk, "topk": self.topk, "class_topk": class_topk,
                 "mlm_topk": self.topk and task.topk_layout == "per_masked", "mlm": self.masked, "words": task.words,
                 "classes": task.has_labels and self.dims.num_labels > 1,  # class ids, softmax targets
                 "score": task.scores and self.stores_logits,  # a regression teacher's score is the target
                 "predictions": self.stores_logits or class_topk}
        if kind not in found:
            raise ValueError(f"unknown cache feature {kind!r}")
        return found[kind] if isinstance(found[kind], set) else ({0} if found[kind] else set())

    def _hidden(self, kind: str, layout: str, shape: tuple[int, ...], layer: int | None = None) -> list[Column]:
        name = column_name(kind, layer)
        column = Column(name, kind, layout, self.hidden_dtype, shape, layer, f"{name}_scale" if self.quantize_hidden else None)
        return [column, column.scale_column()] if column.scale else [column]

    def columns(self) -> list[Column]:
        """Every stored column in schema order, int8 scale columns right after their values."""
        hidden, task = self.dims.hidden_size, self.teacher_task
        out = [Column("input_ids", "input_ids", "per_token", "int32", ())]
        if task.words:
            out += [Column(name, name, "per_word", "int32", ()) for name in ("word_starts", "labels")]
        if self.stores_logits:
            out.append(Column("logits", "logits", task.logits_layout, self.dtype, (self.dims.num_labels,)))
        if self.masked:
            out += [Column(name, name, "per_masked", "int32", ()) for name in ("mlm_positions", "mlm_labels")]
        if self.topk:
            out += [Column("topk_indices", "topk_indices", task.topk_layout, self.topk_index_dtype, (self.topk,)),
                    Column("topk_logits", "topk_logits", task.topk_layout, self.dtype, (self.topk,))]
            if not self.legacy_logits:
                out.append(Column("topk_logsumexp", "topk_logsumexp", task.topk_layout, "float32", ()))
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

    def describe(self) -> dict[str, Any]:
        """The manifest's account of the columns: enough to decode them without this code."""
        names = ("dtype", "hidden_dtype", "quantize_hidden", "topk", "cls_layers", "hidden_layers", "attention_layers",
                 "embedding")
        out = {**asdict(self.dims), **{name: getattr(self, name) for name in names},
               "int8_scale": "per vector, float32, in <column>_scale" if self.quantize_hidden else None,
               "attention_layout": "list per example: heads x len x len, row-major, pre-softmax, unmasked",
               "columns": self.column_names(), "layout": {c.name: c.describe() for c in self.columns()}}
        if self.legacy_logits:  # format 2
            return out
        recompute = ("scores of layer l = (h_{l-1} W_q^T + b_q)(h_{l-1} W_k^T + b_k)^T / sqrt(head_dim) per head, "
                     "from hidden_{l-1} and teacher_files/attention_qk.safetensors")
        return {**out, "head": self.head, "has_mlm_columns": self.masked,
                "topk_temperature": self.topk_temperature if self.topk else None,
                "topk_logsumexp": "log sum_j exp(z_j / topk_temperature) over the full label space, float32"
                if self.topk else None, "attention_mode": self.attention_mode,
                "attention_recompute": recompute if self.attention_mode == "recompute" and self.attention_layers
                else None,
                "stored_hidden_layers": self.stored_hidden_layers, **self._describe_relations()}

    def _describe_relations(self) -> dict[str, Any]:
        """Only where asked for: other manifests stay as they were before relations existed."""
        if not self.relation_layers:
            return {}
        return {"relation_layers": self.relation_layers,
                "relation_recompute": "MiniLM, per head of layer l with h = hidden_{l-1}: scores (h W_q^T + b_q)"
                "(h W_k^T + b_k)^T / sqrt(head_dim) and value relation (h W_v^T + b_v)(h W_v^T + b_v)^T / "
                "sqrt(head_dim), weights in teacher_files/attention_qk.safetensors"}

    @classmethod
    def from_manifest(cls, block: dict[str, Any]) -> "FeatureSet":
        """Rebuild the writer's feature set from a manifest's `features` block."""
        dims = TeacherDims(**{k: int(block[k]) for k in TeacherDims.__dataclass_fields__})
        legacy = "head" not in block  # format 2: a classifier, full logits beside top-k, stored attention
        return cls(dims=dims, dtype=block["dtype"], quantize_hidden=bool(block["quantize_hidden"]),
                   topk=block.get("topk"), cls_layers=list(block["cls_layers"]),
                   hidden_layers=list(block["hidden_layers"]), attention_layers=list(block["attention_layers"]),
                   relation_layers=list(block.get("relation_layers", [])),
                   embedding=bool(block["embedding"]), head=block.get("head", "classification"),
                   attention_mode=block.get("attention_mode", "stored"),
                   topk_temperature=float(block.get("topk_temperature") or 1.0), legacy_logits=legacy,
                   has_mlm_columns=bool(block.get("has_mlm_columns", False)))
