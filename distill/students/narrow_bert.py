"""Narrow BERT (TinyBERT, Jiao et al. 2020): fewer and narrower layers, random init or a given
checkpoint (`init:`, e.g. a general-distillation student saved by this project, or a published
general TinyBERT), plus learned projections W_e, W_h to the teacher's width for the embedding and
hidden-state losses. TinyBERT-4 defaults: 4 layers, hidden 312, 12 heads, intermediate 1200. The
vocabulary and label count are the teacher's; so is the head (a classifier on task caches, none
or a masked LM on corpus caches), so the same student trains generally and then per task."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from distill.students.bert_student import BertStudent
from distill.students.context import BuildContext, task_labels
from distill.common.config_io import NonEmptyStr, PositiveInt
from distill.common.models import model_class
from distill.students.registry import check_student_options, register_student


@dataclass
class NarrowBertOptions:
    init: NonEmptyStr | None = None  # directory or hub name of a pretrained (narrow) BERT, e.g. a general student
    num_hidden_layers: PositiveInt = 4  # TinyBERT-4
    hidden_size: PositiveInt = 312
    num_attention_heads: PositiveInt = 12
    intermediate_size: PositiveInt = 1200


@register_student("narrow_bert")
class NarrowBert(BertStudent):
    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        return check_student_options("narrow_bert", NarrowBertOptions, options)

    @classmethod
    def build(cls, options: dict, context: BuildContext) -> "NarrowBert":
        options = NarrowBertOptions(**cls.check_options(dict(options)))
        teacher = context.teacher_config
        auto = model_class(context.head)
        labels = task_labels(context)
        if options.init:
            model = from_init(auto, options.init, labels)
        else:
            sizes = {k: v for k, v in dataclasses.asdict(options).items() if k != "init"}
            config = teacher.__class__(
                vocab_size=teacher.vocab_size, max_position_embeddings=teacher.max_position_embeddings,
                type_vocab_size=teacher.type_vocab_size, pad_token_id=context.pad_token_id, **labels, **sizes,
            )
            model = auto.from_config(config)
        return cls(model, teacher_hidden=teacher.hidden_size, head=context.head)


def from_init(auto, init: str, labels: dict):
    """A model of class `auto` from a saved checkpoint of any head (a general student's encoder gets
    a new task head): a local directory or a hub name."""
    from distill.common.models import resolve_model_dir

    return auto.from_pretrained(resolve_model_dir(init), **labels)
