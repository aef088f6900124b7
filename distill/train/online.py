"""Online KD: the teacher runs on each student batch and yields the same `TeacherBatch` the cache
would. Used to prove cache-fed training equivalent and to measure what the cache saves."""

from __future__ import annotations

from contextlib import nullcontext

import torch

from distill import attention_capture as attention
from distill.cache.features import column_name
from distill.common.models import load_complete
from distill.teacher_batch import TeacherBatch


class OnlineTeacher:
    def __init__(self, teacher_dir: str, cls_layers: list[int], hidden_layers: list[int], attention_layers: list[int],
                 device: str) -> None:
        from transformers import AutoModelForSequenceClassification

        implementation = attention.register() if attention_layers else "sdpa"
        self.model = load_complete(AutoModelForSequenceClassification, teacher_dir,
                                   attn_implementation=implementation).to(device).eval()
        self.num_layers = self.model.config.num_hidden_layers
        self.cls_layers, self.hidden_layers, self.attention_layers = cls_layers, hidden_layers, attention_layers

    @torch.no_grad()  # not inference_mode: its tensors could not enter the student's autograd graph
    def __call__(self, tensors: dict[str, torch.Tensor], projections: dict | None = None) -> TeacherBatch:
        """`projections`: the cache's teacher projections, for what is recomputed from hidden states (relations)."""
        inputs = {k: tensors[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in tensors}
        needs_states = bool(self.cls_layers or self.hidden_layers)
        recorder = attention.ScoreRecorder(self.attention_layers) if self.attention_layers else nullcontext()
        with recorder:
            outputs = self.model(**inputs, output_hidden_states=needs_states)
        out = dict(tensors)
        out["logits"] = outputs.logits.float()
        mask = tensors["attention_mask"].bool()
        if self.cls_layers:
            out[column_name("cls")] = torch.stack([outputs.hidden_states[l][:, 0] for l in self.cls_layers], dim=1).float()
        for layer in self.hidden_layers:
            out[column_name("hidden", layer)] = (outputs.hidden_states[layer] * mask[..., None]).float()  # 0 at padding, as the cache
        for layer in self.attention_layers:
            pair = (mask[:, :, None] & mask[:, None, :])[:, None]
            out[column_name("attention", layer)] = (recorder.scores[layer] * pair).float()
        return TeacherBatch(out, self.num_layers, self.cls_layers, projections)
