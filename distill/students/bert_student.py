"""The wrapper both BERT students share: a Hugging Face model with the teacher's head plus, for narrow students,
the projections W_e / W_h to the teacher's width. Saved with `save_pretrained`, so `init:` and any
`AutoModelFor….from_pretrained(dir)` load it; the projections go to `projections.safetensors`."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

from distill import attention_capture as attention
from distill.students.output import StudentOutput
from distill.tasks import task_of_head

PROJECTIONS_NAME = "projections.safetensors"
KIND_NAME = "student_config.json"


class BertStudent(nn.Module):
    name = "bert"
    context_options: tuple[str, ...] = ()  # `options_class` fields the build context supplies

    def __init__(self, model, teacher_hidden: int | None = None, head: str = "classification") -> None:
        super().__init__()
        self.model = model
        self.head = head
        self.task = task_of_head(head, model.config.num_labels)
        width = model.config.hidden_size
        if teacher_hidden and teacher_hidden != width:
            self.project_embedding = nn.Linear(width, teacher_hidden)  # W_e
            self.project_layer = nn.Linear(width, teacher_hidden)  # W_h
        else:
            self.project_embedding = self.project_layer = None

    @property
    def num_layers(self) -> int:
        return self.model.config.num_hidden_layers

    def forward(self, tensors: dict[str, torch.Tensor], needs_hidden: bool = False, attention_layers=()) -> StudentOutput:
        recorder = attention.ScoreRecorder(list(attention_layers)) if attention_layers else None
        inputs = {k: tensors[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in tensors}
        with recorder if recorder is not None else nullcontext():
            logits, mlm_logits, hidden_states = self.task.forward(self.model, inputs, needs_hidden, tensors)
        if recorder is not None:
            recorder.check(self.num_layers)
        return StudentOutput(logits=logits, num_layers=self.num_layers, mlm_logits=mlm_logits,
                             hidden_states=hidden_states if needs_hidden else None,
                             scores=recorder.scores if recorder is not None else {},
                             values=recorder.values if recorder is not None else {},
                             project_embedding=self.project_embedding, project_layer=self.project_layer)

    def capture_attention(self) -> None:
        """Route attention through the score-recording function (pre-softmax scores for TinyBERT)."""
        self.model.set_attn_implementation(attention.register())

    def save(self, directory: str | Path) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        self.model.save_pretrained(directory)
        if self.project_layer is not None:
            tensors = {f"project_embedding.{k}": v for k, v in self.project_embedding.state_dict().items()}
            tensors.update({f"project_layer.{k}": v for k, v in self.project_layer.state_dict().items()})
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(directory / PROJECTIONS_NAME))
        teacher_hidden = self.project_layer.out_features if self.project_layer is not None else None
        (directory / KIND_NAME).write_text(json.dumps({"student": self.name, "teacher_hidden": teacher_hidden,
                                                       "head": self.head}))

    @classmethod
    def load(cls, directory: str | Path) -> "BertStudent":
        from safetensors.torch import load_file

        directory = Path(directory)
        meta = json.loads((directory / KIND_NAME).read_text())
        head = meta.get("head", "classification")
        student = cls(task_of_head(head).model_class().from_pretrained(directory), meta.get("teacher_hidden"), head)
        if (directory / PROJECTIONS_NAME).exists():
            student.load_state_dict(load_file(str(directory / PROJECTIONS_NAME)), strict=False)
        return student
