"""Narrow BERT (TinyBERT, Jiao et al. 2020): fewer, narrower layers, random or from `init:`, with learned
projections W_e, W_h to the teacher's width, carried over from an `init:` student that saved them (as
TinyBERT's reference does). Vocabulary, labels and head are the teacher's."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from distill.common.config_io import ConfigError, NonEmptyStr, PositiveInt
from distill.common.models import resolve_model_dir
from distill.students.bert_student import PROJECTIONS_NAME, BertStudent
from distill.students.registry import BuildContext, check_student_options, register_student, task_labels


@dataclass
class NarrowBertOptions:
    init: NonEmptyStr | None = None  # directory or hub name of a pretrained (narrow) BERT, e.g. a general student
    num_hidden_layers: PositiveInt = 4  # TinyBERT-4
    hidden_size: PositiveInt = 312
    num_attention_heads: PositiveInt = 12
    intermediate_size: PositiveInt = 1200


@register_student("narrow_bert")
class NarrowBert(BertStudent):
    options_class = NarrowBertOptions

    @classmethod
    def build(cls, options: dict, context: BuildContext) -> "NarrowBert":
        options = NarrowBertOptions(**check_student_options(cls, dict(options)))
        teacher = context.teacher_config
        auto = context.task.model_class()
        labels = task_labels(context)
        init_dir = resolve_model_dir(options.init) if options.init else None
        if init_dir:
            model = auto.from_pretrained(init_dir, **labels)  # a general student's encoder gets a new task head
        else:
            sizes = {k: v for k, v in dataclasses.asdict(options).items() if k != "init"}
            config = teacher.__class__(
                vocab_size=teacher.vocab_size, max_position_embeddings=teacher.max_position_embeddings,
                type_vocab_size=teacher.type_vocab_size, pad_token_id=context.pad_token_id, **labels, **sizes,
            )
            model = auto.from_config(config)
        student = cls(model, teacher_hidden=teacher.hidden_size, head=context.head)
        if init_dir and (init_dir / PROJECTIONS_NAME).exists():
            carry_projections(student, init_dir / PROJECTIONS_NAME)
        return student


def carry_projections(student: BertStudent, path: Path) -> None:
    """Load an `init:` student's W_e / W_h into `student`; refuse, in one line, shapes that do not fit."""
    from safetensors.torch import load_file

    saved = load_file(str(path))
    have = {k: list(v.shape) for k, v in saved.items()}
    need = {k: list(v.shape) for k, v in student.state_dict().items() if k.startswith("project_")}
    if have != need:
        raise ConfigError(f"{path} holds projections {have}, but this student and teacher need "
                          f"{need or 'none (same width)'}: start from a student distilled from a teacher this wide",
                          "student.init")
    student.load_state_dict(saved, strict=False)
