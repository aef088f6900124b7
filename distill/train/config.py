"""Typed recipe of a student run: the student, one or more stages of weighted losses, the optimiser.

A recipe with top-level `losses:` is one stage; TinyBERT's two stages (intermediate, then
prediction) are a `stages:` list. Defaults: AdamW, linear warm-up (10 %) and decay, gradient
clipping at 1.0, as in BERT fine-tuning.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from distill.losses import build_loss
from distill.metrics import METRICS
from distill.common.config_io import (
    ConfigError, Device, NonEmptyStr, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Probability, Seed,
    YamlConfig, build_config,
)
from distill.students import get_student
from distill.students.registry import check_student_options

LossOptions = dict[str, dict[str, Any] | None]  # loss name -> its options, checked by the loss's dataclass


@dataclass
class StageConfig:
    name: NonEmptyStr = "train"
    losses: LossOptions = field(default_factory=lambda: {"ce": {}})  # name -> options (weight, ...)
    epochs: PositiveFloat = 3.0
    max_steps: PositiveInt | None = None  # stop the stage early (smoke runs, tests)
    learning_rate: PositiveFloat = 5e-5
    warmup_ratio: Probability = 0.1
    weight_decay: NonNegativeFloat = 0.01

    def __post_init__(self) -> None:
        if not self.losses:
            raise ConfigError(f"stage {self.name!r} has no losses", "losses")
        for name, options in self.losses.items():
            try:
                build_loss(name, options)
            except ConfigError as err:
                raise err.under(f"losses.{name}.") from None
            except KeyError as err:  # an unknown loss, or an option the loss does not have
                raise ConfigError(str(err.args[0]), f"losses.{name}") from None
            except (TypeError, ValueError) as err:
                raise ConfigError(str(err), f"losses.{name}") from None

    def build_losses(self) -> dict[str, Any]:
        return {name: build_loss(name, options) for name, options in self.losses.items()}


@dataclass
class TrainConfig(YamlConfig):
    # name + the student's options, checked against its `options_class` (e.g. BiLSTMConfig's fields)
    student: dict[str, Any] = field(default_factory=lambda: {"name": "bilstm"})
    losses: LossOptions | None = None  # shorthand for one stage
    stages: list[dict[str, Any]] | None = None  # each a StageConfig
    epochs: PositiveFloat = 3.0  # defaults for the shorthand stage
    max_steps: PositiveInt | None = None
    learning_rate: PositiveFloat = 5e-5
    warmup_ratio: Probability = 0.1
    weight_decay: NonNegativeFloat = 0.01
    batch_size: PositiveInt = 32
    group_by_length: bool = True  # batches of similar-length rows (less padding); false: plain random batches
    max_grad_norm: PositiveFloat = 1.0
    seed: Seed = 0
    eval_every: NonNegativeInt = 0  # steps between dev evaluations; 0 = once per epoch
    # keep the student of the last stage's best dev evaluation (headline metric) as `student/`,
    # as transformers' load_best_model_at_end does; needs a dev set (--eval)
    keep_best: bool = False
    # end the last stage after this many dev evaluations in a row without a new best (0 = never);
    # needs a dev set. Dev scores decide when to stop, so report them on another set if you can.
    early_stopping_patience: NonNegativeInt = 0
    # dev metrics (distill.metrics), the first is the headline; None = the task's usual ones
    # (accuracy + F1 / macro F1, Pearson + Spearman for regression); e.g. [mcc, accuracy] for CoLA
    metrics: list[NonEmptyStr] | None = None
    log_every: PositiveInt = 10
    checkpoint_every: PositiveInt = 200  # steps between checkpoints (and one at every stage end)
    num_workers: NonNegativeInt = 0  # DataLoader worker processes
    amp: Literal["auto", "off"] = "auto"  # auto = bf16 autocast on GPU, off on CPU; or off
    device: Device = "auto"

    def __post_init__(self) -> None:
        """Everything is checked here, when the recipe is loaded: stages, loss options and student
        options too, so a bad value fails before any cache is opened or directory written."""
        super().__post_init__()
        if "name" not in self.student:
            raise ConfigError("student needs a name (bilstm, bert_from_teacher, narrow_bert)", "student.name")
        try:
            student = get_student(self.student["name"])
        except (KeyError, TypeError) as err:
            raise ConfigError(str(err.args[0]), "student.name") from None
        try:
            check_student_options(student, self.student_options())
        except ConfigError as err:
            raise err.under("student.") from None
        for name in self.metrics or ():
            if name not in METRICS:
                raise ConfigError(f"unknown metric {name!r} (known: {', '.join(sorted(METRICS))})", "metrics")
        if self.losses is not None and self.stages is not None:
            raise ConfigError("give either losses (one stage) or stages, not both", "stages")
        if self.stages is not None and not self.stages:
            raise ConfigError("[] has no stage (give at least one, or losses: for one stage)", "stages")
        self.stage_configs()

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
