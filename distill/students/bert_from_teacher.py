"""Small BERT from teacher layers (DistilBERT, BERT-PKD): the teacher's width and head, k of its layers.

`layers: spread` picks round(linspace(0, L−1, k)) (DistilBERT's [0, 2, 4, 7, 9, 11] for 12 → 6), `first` the
first k (BERT-PKD), or a list; `init:` starts instead from a saved student.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from distill.common.config_io import NonEmptyStr, NonNegativeInt, PositiveInt
from distill.common.models import load_complete, resolve_model_dir
from distill.students.bert_student import BertStudent
from distill.students.registry import BuildContext, check_student_options, register_student, task_labels


_LAYER = re.compile(r"^(.*\.)?encoder\.layer\.(\d+)\.(.*)$")


def init_layers(spec, num_layers: int, teacher_layers: int) -> list[int]:
    if spec == "spread":
        return [int(x) for x in np.round(np.linspace(0, teacher_layers - 1, num_layers))]
    if spec == "first":
        return list(range(num_layers))
    layers = [int(x) for x in spec]
    if len(layers) != num_layers or not all(0 <= x < teacher_layers for x in layers):
        raise ValueError(f"layers {layers} must name {num_layers} teacher layers in 0..{teacher_layers - 1}")
    return layers


@dataclass
class BertFromTeacherOptions:
    num_layers: PositiveInt = 6  # DistilBERT: half of BERT-base's 12
    layers: Literal["spread", "first"] | list[NonNegativeInt] = "spread"  # which teacher layers to copy
    init: NonEmptyStr | None = None  # start from this saved student instead of copying teacher layers


@register_student("bert_from_teacher")
class BertFromTeacher(BertStudent):
    options_class = BertFromTeacherOptions

    @classmethod
    def build(cls, options: dict, context: BuildContext) -> "BertFromTeacher":
        options = BertFromTeacherOptions(**check_student_options(cls, dict(options)))
        auto = context.task.model_class()
        if options.init:
            return cls(auto.from_pretrained(resolve_model_dir(options.init), **task_labels(context)), head=context.head)
        config = copy.deepcopy(context.teacher_config)
        chosen = init_layers(options.layers, options.num_layers, config.num_hidden_layers)
        teacher_dir = context.teacher_weights("bert_from_teacher (it copies teacher layers)")
        teacher_state = load_complete(auto, teacher_dir).state_dict()
        config.num_hidden_layers = options.num_layers
        model = auto.from_config(config)
        state = {}
        for name, value in teacher_state.items():
            match = _LAYER.match(name)  # "bert.encoder.layer.3.…" (with a head) or "encoder.layer.3.…" (encoder)
            if match is None:
                state[name] = value
            elif int(match.group(2)) in chosen:
                state[f"{match.group(1) or ''}encoder.layer.{chosen.index(int(match.group(2)))}.{match.group(3)}"] = value
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise RuntimeError(f"copying teacher layers {chosen}: missing {missing[:3]}, unexpected {unexpected[:3]}")
        student = cls(model, head=context.head)
        student.copied_layers = chosen
        return student
