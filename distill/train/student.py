"""The student recipe: a student learns a teacher cache's targets (or, with `online`, the teacher's
outputs computed every step), stage by stage, on the training engine (`distill.train.engine`).

`run_student` sets a run up (cache, run directory, the student built or resumed, dev set), lets
the engine train it and finishes: the final student (the best evaluation's with `keep_best`) with
its tokenizer and `task.json`, `timing.json`, and with a dev set the report and curves.
"""

from __future__ import annotations

import json
import logging
import math
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from distill.cache import TeacherCache, load
from distill.cache.assets import read_input_embeddings
from distill.cache.teacher_ref import find_teacher, require_teacher
from distill.common.columns import Columns
from distill.common.config_io import ConfigError
from distill.common.hardware import worker_device
from distill.evaluate import TASK_NAME, evaluate, task_record
from distill.evaluate.dev_sets import read_dev_set
from distill.metrics import check_metrics, default_metrics
from distill.storage.atomic import write_json_atomic
from distill.students import get_student, load_student
from distill.students.registry import BuildContext
from distill.teacher_batch import TeacherBatch
from distill.train.config import TrainConfig
from distill.train.data import CacheBatches, epoch_loader
from distill.train.engine import Engine, Phase, Recipe, Settings, WorkerGroup
from distill.train.report import plot_metrics, write_report
from distill.train.requirements import check_features
from distill.train.run_dir import (
    BEST_DIR, METRICS_NAME, STUDENT_DIR, TIMING_NAME, check_run_dir, load_checkpoint, read_state, run_record,
    save_checkpoint, save_student_atomic, start_run_dir,
)

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    student_dir: Path
    steps: int
    seconds: float  # the run's training time, a resumed run's earlier processes included
    data_seconds: float
    dev: dict[str, float] | None
    report: dict[str, Any] | None = None
    loop_seconds: float | None = None  # the loop alone (a multi-worker run's `seconds` include Ray's start-up)
    best: dict[str, Any] | None = None  # keep_best / early stopping: the best evaluation (step, metric, value, metrics)


def build_context(cache: TeacherCache, teacher_dir: Path | None) -> BuildContext:
    """What students are built from: the cache's account of the teacher, and its weights only on request."""
    dims = cache.dims
    return BuildContext(
        teacher_config=cache.teacher_config(), num_labels=dims.num_labels, num_layers=dims.num_layers,
        vocab_size=dims.vocab_size, pad_token_id=cache.manifest["tokenizer"]["pad_token_id"], pair=cache.is_pair,
        token_ids=cache.token_ids, input_embeddings=lambda: read_input_embeddings(cache.path),
        teacher_weights=lambda why: require_teacher(cache.manifest, teacher_dir, why), head=cache.features.head)


def _wanted(losses, student_layers: int, teacher_layers: int) -> dict[str, set[int]]:
    """Teacher features (and their layers) a stage's losses read."""
    wanted: dict[str, set[int]] = {}
    for loss in losses.values():
        for feature, layers in loss.needs(student_layers, teacher_layers).items():
            wanted.setdefault(feature, set()).update(layers)
    return wanted


def _student_attention(losses, student_layers: int, teacher_layers: int) -> list[int]:
    """Student layers whose attention scores and values a stage's losses read."""
    return sorted({layer for loss in losses.values()
                   for layer in loss.student_attention(student_layers, teacher_layers)})


def _check_request(cache: TeacherCache, teacher_dir: Path | None, online: bool, dev_file) -> None:
    """Refuse what the cache's task cannot do, before anything is written."""
    task = cache.features.teacher_task
    if online:
        require_teacher(cache.manifest, teacher_dir, "--online")
        if not task.online:
            raise ConfigError("--online runs sequence-classifier teachers only; general distillation and token "
                              "tasks read their cache")
    if dev_file and not task.has_labels:
        raise ConfigError(f"--eval scores a classifier; {cache.path} holds {cache.features.head} teacher targets "
                          "(general distillation): evaluate the student after a task stage")


class StudentRecipe(Recipe):
    """A student run on the engine: the student built (or resumed), checked, on its device, and its dev set."""

    def __init__(self, config: TrainConfig, cache: TeacherCache, run_dir: Path, teacher_dir: Path | None,
                 online: bool, group: WorkerGroup, state: dict[str, Any] | None) -> None:
        self.config, self.cache, self.run_dir, self.teacher_dir = config, cache, run_dir, teacher_dir
        self.online = online
        self.group, self.device = group, group.device or worker_device(config.device)
        self.stages, self.teacher_layers, self.task = config.stage_configs(), cache.dims.num_layers, cache.features.task
        self.watch_best = config.keep_best or config.early_stopping_patience > 0
        self.teacher = None  # online: the teacher, run on every batch
        torch.manual_seed(config.seed)
        self.resume = self._build(state)
        self.dataset = CacheBatches(cache.path)
        self.steps_per_epoch = math.ceil(len(self.dataset) / config.batch_size)
        self.wrapped = group.wrap(self.model)  # what the training step calls (DDP with several workers)
        weights = cache.attention_weights()
        if weights is not None:  # attention: recompute — moved to the device once
            weights = TeacherBatch({}, self.teacher_layers, attention_weights=weights).to(self.device).attention_weights
        self.attention_weights = weights

    def _build(self, state: dict[str, Any] | None) -> dict[str, Any] | None:
        """The student, resumed from the last checkpoint (returns its optimizer state) or built new."""
        config, resume = self.config, None
        if state is not None:
            self.model, resume = load_checkpoint(self.run_dir)
            log.info("resuming from %s at stage %d, step %d", self.run_dir, state["stage"], state["global_step"])
        else:
            context = build_context(self.cache, self.teacher_dir)
            self.model = get_student(config.student["name"]).build(config.student_options(), context)
        if self.group.world > 1:  # dropout: one stream per worker (DDP broadcasts rank 0's weights)
            torch.manual_seed(config.seed * 1000 + self.group.rank + 1 + (state or {}).get("global_step", 0))
        layers, cache = self.model.num_layers, self.cache
        attention = any(_student_attention(s.build_losses(), layers, self.teacher_layers) for s in self.stages)
        if attention and not hasattr(self.model, "capture_attention"):
            raise ConfigError(f"student {config.student['name']!r} has no self-attention to distil: the attention "
                              "losses (tinybert_attention, minilm) train BERT students", "student.name")
        check_features(self.stages, cache.features, layers, self.teacher_layers, str(cache.path))
        if attention:
            self.model.capture_attention()
        self.model.to(self.device)
        return resume

    def read_dev(self, dev_file, columns: Columns | None) -> None:
        """The dev set (scored with the cache's tokenizer and label space) and its metrics."""
        cache, self.dev, self.tokenizer = self.cache, None, self.cache.tokenizer()  # the dev set's, then the student's
        self.labels = cache.label_space()
        if dev_file:
            self.dev = read_dev_set(dev_file, columns or Columns(), self.tokenizer, self.labels, self.task,
                                    cache.manifest["tokenizer"]["max_length"])
        chosen, task = self.config.metrics, self.task
        try:  # the recipe's metrics, checked against the cache's task, or the task's usual ones
            self.metric_names = check_metrics(chosen, task) if chosen else default_metrics(task, cache.dims.num_labels)
        except ValueError as err:
            raise ConfigError(str(err), "metrics") from None
        self.has_dev = self.dev is not None
        if self.watch_best and not self.has_dev:
            raise ConfigError("keep_best and early_stopping_patience score the student on a dev set: pass --eval FILE",
                              "keep_best" if self.config.keep_best else "early_stopping_patience")
        if self.has_dev:
            log.info("dev set: %s; metrics: %s", self.dev.describe(), ", ".join(self.metric_names))

    def phases(self) -> list[Phase]:
        phases, last = [], len(self.stages) - 1
        for i, s in enumerate(self.stages):
            total = s.max_steps or max(1, int(s.epochs * self.steps_per_epoch))
            phases.append(Phase(s.name, total, self.steps_per_epoch, s.learning_rate, int(s.warmup_ratio * total),
                                s.weight_decay, i, self.watch_best and i == last))
        return phases

    def settings(self) -> Settings:
        c = self.config
        metric = self.metric_names[0] if self.metric_names else Settings.metric  # none: no dev set (a corpus)
        return Settings(self.device, amp=c.amp == "auto", max_grad_norm=c.max_grad_norm, log_every=c.log_every,
                        eval_every=c.eval_every, metric=metric, patience=c.early_stopping_patience,
                        checkpoint_every=c.checkpoint_every)

    def begin(self, phase: Phase) -> None:
        self.losses = self.stages[phase.index].build_losses()
        wanted = _wanted(self.losses, self.model.num_layers, self.teacher_layers)
        self.needs_hidden = bool(wanted.keys() & {"cls", "hidden", "embedding"})
        self.student_attention_layers = _student_attention(self.losses, self.model.num_layers, self.teacher_layers)
        if self.online:
            from distill.train.online import OnlineTeacher

            relation_inputs = {layer - 1 for layer in wanted.get("relation", ())}  # recomputed, as from the cache
            hidden = sorted(wanted.get("hidden", set()) | ({0} if "embedding" in wanted else set()) | relation_inputs)
            self.teacher = OnlineTeacher(str(self.teacher_dir), sorted(wanted.get("cls", [])), hidden,
                                         sorted(wanted.get("attention", ())), self.device)

    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def batches(self, phase: Phase, epoch: int, start: int):
        c, group = self.config, self.group
        return epoch_loader(self.dataset, c.batch_size, c.seed + phase.index, epoch, start, c.num_workers,
                            pin_memory=self.device.startswith("cuda"), group_by_length=c.group_by_length,
                            rank=group.rank, world=group.world)

    def prepare(self, tensors: dict[str, torch.Tensor]) -> TeacherBatch:
        features = self.cache.features
        targets = TeacherBatch(tensors, self.teacher_layers, features.cls_layers, self.attention_weights,
                               features.topk_temperature).to(self.device)
        return self.teacher(targets.tensors, targets.attention_weights) if self.teacher is not None else targets

    def loss(self, targets: TeacherBatch):
        output = self.wrapped(targets.tensors, needs_hidden=self.needs_hidden,
                              attention_layers=self.student_attention_layers)
        values = {name: loss(output, targets) for name, loss in self.losses.items()}
        return sum(self.losses[n].weight * v for n, v in values.items()), values

    def evaluate(self) -> dict[str, float]:
        self.model.eval()
        return evaluate(lambda t: self.model(t).logits, self.dev, self.device, self.task, self.metric_names)

    def save_best(self) -> None:
        if self.config.keep_best:
            save_student_atomic(self.model, self.run_dir / BEST_DIR)

    def save_checkpoint(self, engine: Engine) -> Path:
        return save_checkpoint(self.run_dir, self.model, engine.checkpoint_state(), engine.state)

    def finish(self, engine: Engine, teacher_report: bool) -> TrainResult:
        """Rank 0 saves the student (the best one with keep_best), its task record, timing and report."""
        run_dir, steps, waited = self.run_dir, engine.state["global_step"], engine.data_seconds
        seconds = engine.seconds()
        student_dir, best = run_dir / STUDENT_DIR, engine.state.get("best") if self.watch_best else None
        if not self.group.is_main:
            return TrainResult(run_dir, student_dir, steps, seconds, waited, None, best=best)
        student, dev_metrics = self.model, engine.evaluations[-1]["metrics"] if engine.evaluations else None
        if self.config.keep_best and best and best["step"] is not None and (run_dir / BEST_DIR).exists():
            student, dev_metrics = load_student(run_dir / BEST_DIR).to(self.device), best["metrics"]
            log.info("keeping the best evaluation: step %d, dev %s %.4f", best["step"], best["metric"], best["value"])
        student.save(student_dir)
        self.tokenizer.save_pretrained(student_dir)
        write_json_atomic(student_dir / TASK_NAME, task_record(self.task, self.labels,
                                                              self.cache.manifest["tokenizer"]["max_length"]))
        write_json_atomic(run_dir / TIMING_NAME, {"seconds": seconds, "data_seconds": waited,
                                                  "workers": self.group.world, "steps": steps, "best": best})
        log.info("trained %s for %d steps in %.1fs (%.0f%% waiting for data) -> %s", self.config.student["name"],
                 steps, seconds, 100 * waited / max(seconds, 1e-9), student_dir)
        report = None
        if self.has_dev:
            teacher, note = self.teacher_dir, None
            if not teacher_report:
                teacher, note = None, "not requested (--no-teacher-report)"
            report = write_report(run_dir, student, student_dir, teacher, self.dev, self.device, note, self.task,
                                  self.metric_names)
            plot_metrics(run_dir / METRICS_NAME, run_dir / "curves.png", self.metric_names[0])
        return TrainResult(run_dir, student_dir, steps, seconds, waited, dev_metrics, report, best=best)


def run_student(config: TrainConfig, cache_dir: str | Path, run_dir: str | Path, dev_file: str | Path | None = None,
                dev_columns: Columns | None = None, online: bool = False, teacher_report: bool = True,
                teacher: str | None = None, overwrite: bool = False, verify: str = "full",
                group: WorkerGroup | None = None) -> TrainResult:
    """Train in this process: alone, or as one worker of a Ray Train group (`distill.train.loop.train`)."""
    group, run_dir = group or WorkerGroup(), Path(run_dir)
    cache = load(cache_dir, verify=verify)
    record = run_record(config.resolved(), cache_dir, cache.fingerprint, online, group.world)
    resuming = check_run_dir(run_dir, record["fingerprint"], overwrite)
    teacher_dir = find_teacher(cache.manifest, teacher)
    _check_request(cache, teacher_dir, online, dev_file)
    state = read_state(run_dir) if resuming else None
    recipe = StudentRecipe(config, cache, run_dir, teacher_dir, online, group, state)
    recipe.read_dev(dev_file, dev_columns)
    if group.is_main:
        start_run_dir(run_dir, record, resuming)
    with open(run_dir / METRICS_NAME, "a", encoding="utf-8") if group.is_main else nullcontext() as metrics:
        engine = Engine(recipe, recipe.settings(), group, metrics, state)
        engine.fit(recipe.phases(), recipe.resume)
    return recipe.finish(engine, teacher_report)


def result_from_run_dir(run_dir: Path, seconds: float) -> TrainResult:
    """A finished run's result as its files record it (after a multi-worker run)."""
    state = read_state(run_dir) or {"global_step": 0}
    report_path = run_dir / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    dev = {k: v for k, v in (report or {}).get("student", {}).items() if isinstance(v, float)} or None
    timing = json.loads((run_dir / TIMING_NAME).read_text()) if (run_dir / TIMING_NAME).exists() else {}
    return TrainResult(run_dir, run_dir / STUDENT_DIR, state["global_step"], seconds, timing.get("data_seconds", 0.0),
                       dev, report, timing.get("seconds"), timing.get("best"))
