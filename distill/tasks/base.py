"""The Task type: what differs between task kinds, asked of one object instead of compared by name
(docs/tasks.md). Class attributes describe a kind; the methods compute what depends on it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from distill.common.labels import LabelSpace


class Task:
    name: ClassVar[str]  # as task.json, the metrics and `FeatureSet.task` say it
    head: ClassVar[str]  # the teacher head a cache manifest records
    auto_class: ClassVar[str] = "AutoModel"  # transformers auto class of its teachers and BERT students
    input_task: ClassVar[str] = "sequence_classification"  # an augmented manifest's `task` for its data
    problem_type: ClassVar[str | None] = None  # a new transformers head's `problem_type`
    noun: ClassVar[str] = "model"  # what to pass, in a refusal
    has_labels: ClassVar[bool] = False  # gold labels, and logits per example (or word): classes, a score, tags
    online: ClassVar[bool] = False  # `--online` can run its teacher beside the student
    words: ClassVar[bool] = False  # per-word layout: word starts, per-word gold tags and logits
    masked: ClassVar[bool] = False  # labels a masked corpus, at its masked positions only
    scores: ClassVar[bool] = False  # gold and predictions are one float score, not a class
    logits_layout: ClassVar[str | None] = None  # cache layout of full logits (None: never stored)
    topk_layout: ClassVar[str | None] = None  # cache layout of top-k targets (None: no top-k)
    topk_temperature: ClassVar[float] = 1.0  # default temperature of the stored log-normaliser
    metrics: ClassVar[tuple[str, ...]] = ()  # names in `distill.metrics` that apply
    recipe: ClassVar[str] = "tang_bilstm"  # the student recipe its cache card suggests

    def model_class(self):
        import transformers

        return getattr(transformers, self.auto_class)

    def output_size(self, config: Any) -> int:
        """Outputs per prediction, from a transformers config or `TeacherDims`."""
        return config.num_labels

    def label_space(self, config: Mapping[str, Any]) -> LabelSpace:
        """Names <-> ids of the teacher's classes (its config's `label2id`). Labels match by name, and one
        the teacher cannot produce is refused naming both its and the data's (`LabelSpace.ids`)."""
        return LabelSpace.from_config(config)

    def head_config(self, teacher_config: Any, num_labels: int) -> dict[str, Any]:
        """`from_pretrained` / `from_config` keys of a new model with this head."""
        return {}

    def check_label_config(self, config: Any, masked_input: bool) -> None:
        """Refuse (ConfigError) label-stage options this kind cannot honour."""

    def topk(self, config: Any, dims: Any) -> int | None:
        """Top-k targets a cache keeps per prediction (None: full logits or none)."""
        return None

    def check_topk(self, topk: int | None) -> None:
        """Refuse (ValueError) a feature set with a top-k this kind cannot have."""

    def gold(self, labels):
        """A batch's gold labels as the losses read them."""
        return labels

    def forward(self, model, inputs: dict, hidden_states: bool, extra: Mapping[str, Any]):
        """(logits, masked-LM logits, hidden states) of a teacher or BERT student; `extra` holds the batch
        tensors a head reads (`word_starts`, `mlm_positions`)."""
        outputs = model.base_model(**inputs, output_hidden_states=hidden_states)
        return None, None, outputs.hidden_states

    def default_metrics(self, num_labels: int) -> list[str]:
        """The metrics papers report for it (first = headline)."""
        return list(self.metrics)

    def scored(self, logits, gold, names: Sequence[str] | None = None) -> tuple[list, list]:
        """What a metric compares, per example (per sentence for tagging): predictions and gold."""
        return list(logits.argmax(dim=-1).numpy()), list(gold.numpy())

    def card_lines(self, totals: Mapping[str, Any]) -> list[str]:
        """Lines the cache card adds under Features."""
        return []


class Classifier(Task):
    """Logits per example (or per word) from a transformers `…For…Classification` head."""

    has_labels = True
    logits_layout = "fixed"

    def head_config(self, teacher_config: Any, num_labels: int) -> dict[str, Any]:
        return {"num_labels": num_labels}

    def forward(self, model, inputs: dict, hidden_states: bool, extra: Mapping[str, Any]):
        outputs = model(**inputs, output_hidden_states=hidden_states)
        return outputs.logits, None, outputs.hidden_states
