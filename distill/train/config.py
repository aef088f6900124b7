"""Typed recipe of a student run: the student, one or more stages of weighted losses, the optimiser.

A recipe with top-level `losses:` is one stage; TinyBERT's two stages (intermediate, then
prediction) are a `stages:` list. Defaults: AdamW, linear warm-up (10 %) and decay, gradient
clipping at 1.0, as in BERT fine-tuning.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from distill.losses import build_loss
from distill.common.config_io import ConfigError, YamlConfig, build_config
from distill.students import get_student


@dataclass
class StageConfig:
    name: str = "train"
    losses: dict[str, dict[str, Any]] = field(default_factory=lambda: {"ce": {}})  # name -> options (weight, ...)
    epochs: float = 3.0
    max_steps: int | None = None  # stop the stage early (smoke runs, tests)
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01

    def __post_init__(self) -> None:
        if not self.losses:
            raise ConfigError(f"stage {self.name!r} has no losses")
        for name, options in self.losses.items():
            try:
                build_loss(name, options)
            except (KeyError, TypeError, ValueError) as err:
                raise ConfigError(f"stage {self.name!r}: {err}") from None

    def build_losses(self) -> dict[str, Any]:
        return {name: build_loss(name, options) for name, options in self.losses.items()}


@dataclass
class TrainConfig(YamlConfig):
    student: dict[str, Any] = field(default_factory=lambda: {"name": "bilstm"})  # name + the student's options
    losses: dict[str, dict[str, Any]] | None = None  # shorthand for one stage
    stages: list[dict[str, Any]] | None = None
    epochs: float = 3.0  # defaults for the shorthand stage
    max_steps: int | None = None
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    batch_size: int = 32
    group_by_length: bool = True  # batches of similar-length rows (less padding); false: plain random batches
    max_grad_norm: float = 1.0
    seed: int = 0
    eval_every: int = 0  # steps between dev evaluations; 0 = once per epoch
    log_every: int = 10
    checkpoint_every: int = 200  # steps between checkpoints (and one at every stage end)
    num_workers: int = 0  # DataLoader worker processes
    amp: str = "auto"  # auto = bf16 autocast on GPU, off on CPU; or off
    device: str = "auto"

    def __post_init__(self) -> None:
        if "name" not in self.student:
            raise ConfigError("student needs a name (bilstm, bert_from_teacher, narrow_bert)")
        try:
            get_student(self.student["name"])
        except KeyError as err:
            raise ConfigError(str(err.args[0])) from None
        if self.losses is not None and self.stages is not None:
            raise ConfigError("give either losses (one stage) or stages, not both")

    def stage_configs(self) -> list[StageConfig]:
        if self.stages is not None:
            return [build_config(StageConfig, dict(stage), f"stages[{i}].") for i, stage in enumerate(self.stages)]
        shared = {k: getattr(self, k) for k in ("epochs", "max_steps", "learning_rate", "warmup_ratio", "weight_decay")}
        return [StageConfig(losses=dict(self.losses or {"ce": {}}), **shared)]

    def student_options(self) -> dict[str, Any]:
        return {k: v for k, v in self.student.items() if k != "name"}

    def resolved(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["stages"] = [dataclasses.asdict(s) for s in self.stage_configs()]
        data.pop("losses")
        return data
