"""Narrow BERT (TinyBERT, Jiao et al. 2020): fewer and narrower layers, random init or a given
checkpoint (a general-distillation TinyBERT), plus learned projections W_e, W_h to the
teacher's width for the embedding and hidden-state losses. TinyBERT-4 defaults: 4 layers,
hidden 312, 12 heads, intermediate 1200. The vocabulary and label count are the teacher's."""

from __future__ import annotations

from distill.students.bert_student import BertStudent
from distill.students.context import BuildContext
from distill.students.registry import register_student


@register_student("narrow_bert")
class NarrowBert(BertStudent):
    @classmethod
    def build(cls, options: dict, context: BuildContext) -> "NarrowBert":
        from transformers import AutoModelForSequenceClassification

        options = dict(options)
        init = options.pop("init", None)  # directory or hub name of a pretrained narrow BERT
        teacher = context.teacher_config
        if init:
            model = AutoModelForSequenceClassification.from_pretrained(init, num_labels=context.num_labels)
        else:
            sizes = dict(num_hidden_layers=4, hidden_size=312, num_attention_heads=12, intermediate_size=1200)
            sizes.update(options)
            config = teacher.__class__(
                vocab_size=teacher.vocab_size, max_position_embeddings=teacher.max_position_embeddings,
                type_vocab_size=teacher.type_vocab_size, num_labels=context.num_labels,
                pad_token_id=context.pad_token_id, **sizes,
            )
            model = AutoModelForSequenceClassification.from_config(config)
        return cls(model, teacher_hidden=teacher.hidden_size)
