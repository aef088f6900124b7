"""Students built the way the trainer builds them (`get_student(name).build(options, BuildContext)`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from distill.students import get_student
from distill.students.registry import BuildContext

TEACHER_LAYERS = 6


@pytest.fixture(scope="module")
def deep_teacher_dir(tmp_path_factory) -> Path:
    """A random 6-layer BertForSequenceClassification (no tokenizer: only its weights are copied)."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=120, hidden_size=16, num_hidden_layers=TEACHER_LAYERS, num_attention_heads=2,
                        intermediate_size=24, max_position_embeddings=64, num_labels=3, initializer_range=0.5)
    path = tmp_path_factory.mktemp("deep-teacher")
    BertForSequenceClassification(config).save_pretrained(path)
    return path


def _context(teacher_dir: Path) -> BuildContext:
    """What `distill.train.loop.build_context` gives a student, from the teacher directory instead of a cache."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(teacher_dir)
    return BuildContext(
        teacher_config=config,
        num_labels=config.num_labels,
        num_layers=config.num_hidden_layers,
        vocab_size=config.vocab_size,
        pad_token_id=config.pad_token_id,
        pair=False,
        token_ids=lambda: np.arange(config.vocab_size),
        input_embeddings=lambda: None,
        teacher_weights=lambda why: teacher_dir,
    )


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return dict(module.state_dict())


@pytest.mark.parametrize("layers, chosen", [
    ("first", [0, 1, 2, 3]),  # BERT-PKD: the bottom k layers
    ("spread", [0, 2, 3, 5]),  # round(linspace(0, 5, 4)) = round([0, 1.67, 3.33, 5])
    ([5, 1, 4, 0], [5, 1, 4, 0]),  # an explicit list, in the student's order
])
def test_bert_from_teacher_copies_the_chosen_teacher_layers(deep_teacher_dir, layers, chosen):
    from transformers import AutoModelForSequenceClassification

    teacher = AutoModelForSequenceClassification.from_pretrained(deep_teacher_dir)
    teacher_layers = teacher.bert.encoder.layer
    # the teacher's layers all differ, so copying the wrong one cannot go unnoticed
    for a in range(TEACHER_LAYERS):
        for b in range(a + 1, TEACHER_LAYERS):
            assert not torch.equal(teacher_layers[a].attention.self.query.weight, teacher_layers[b].attention.self.query.weight)

    student = get_student("bert_from_teacher").build({"num_layers": 4, "layers": layers}, _context(deep_teacher_dir))
    assert student.copied_layers == chosen
    model = student.model
    assert model.config.num_hidden_layers == len(model.bert.encoder.layer) == 4
    for i, t in enumerate(chosen):
        got, want = _state(model.bert.encoder.layer[i]), _state(teacher_layers[t])
        assert got.keys() == want.keys() and got
        for name, value in want.items():
            assert torch.equal(got[name], value), f"student layer {i}.{name} is not teacher layer {t}.{name}"
    # embeddings, pooler and classifier come from the teacher as well
    for part in ("bert.embeddings", "bert.pooler", "classifier"):
        got, want = _state(model.get_submodule(part)), _state(teacher.get_submodule(part))
        assert got.keys() == want.keys() and got
        for name, value in want.items():
            assert torch.equal(got[name], value), f"{part}.{name}"
    # and nothing else: the student's parameters are exactly those copied above
    copied = sum(p.numel() for i in chosen for p in teacher_layers[i].parameters())
    copied += sum(p.numel() for part in ("bert.embeddings", "bert.pooler", "classifier")
                  for p in teacher.get_submodule(part).parameters())
    assert sum(p.numel() for p in student.parameters()) == copied


def _general_student(teacher_dir: Path, out: Path, width: int = 8) -> dict[str, torch.Tensor]:
    """A saved general (encoder-only) narrow student with non-trivial W_e / W_h; returns them."""
    context = _context(teacher_dir)
    context.head = "none"
    student = get_student("narrow_bert").build({"num_hidden_layers": 2, "hidden_size": width, "num_attention_heads": 2,
                                                "intermediate_size": 16}, context)
    with torch.no_grad():
        for i, parameter in enumerate(p for n, p in student.named_parameters() if n.startswith("project_")):
            parameter.copy_(torch.arange(parameter.numel(), dtype=torch.float32).view_as(parameter) / 7 + i)
    student.save(out)
    return {n: v.clone() for n, v in student.state_dict().items() if n.startswith("project_")}


def test_tinybert_init_carries_projections(deep_teacher_dir, tmp_path):
    """A task student started from a general one (`init:`) keeps the general stage's learned W_e / W_h
    (TinyBERT's reference carries them over); a teacher of another width is refused in one line."""
    from distill.common.config_io import ConfigError

    saved = _general_student(deep_teacher_dir, tmp_path / "general")
    assert saved.keys() == {"project_embedding.weight", "project_embedding.bias", "project_layer.weight",
                            "project_layer.bias"} and saved["project_layer.weight"].shape == (16, 8)
    task = get_student("narrow_bert").build({"init": str(tmp_path / "general")}, _context(deep_teacher_dir))
    assert task.model.config.hidden_size == 8 and task.model.config.num_labels == 3
    got = {n: v for n, v in task.state_dict().items() if n.startswith("project_")}
    assert got.keys() == saved.keys()
    for name, value in saved.items():
        assert torch.equal(got[name], value), name
    context = _context(deep_teacher_dir)
    context.teacher_config.hidden_size = 24  # a wider teacher than the general student's
    with pytest.raises(ConfigError, match=r"student.init: .*projections.*\[24, 8\]") as error:
        get_student("narrow_bert").build({"init": str(tmp_path / "general")}, context)
    assert "\n" not in str(error.value)


def test_bert_from_teacher_init_starts_from_a_saved_student(deep_teacher_dir, tmp_path):
    saved = get_student("bert_from_teacher").build({"num_layers": 2}, _context(deep_teacher_dir))
    saved.save(tmp_path / "general")
    student = get_student("bert_from_teacher").build({"init": str(tmp_path / "general")}, _context(deep_teacher_dir))
    assert student.model.config.num_hidden_layers == 2 and student.project_layer is None
    for name, value in saved.model.state_dict().items():
        assert torch.equal(student.model.state_dict()[name], value), name
