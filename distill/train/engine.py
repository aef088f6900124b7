"""The training engine of student training, teacher fine-tuning and the benches that train.

A recipe (`student.StudentRecipe`, `distill.finetune.FinetuneRecipe`) says what is trained: its
model, batches, loss, dev evaluation and checkpoint files. The engine says how, in separate units
as torchtune's recipe classes have them: `setup` (AdamW, linear warm-up and decay), `step`
(forward under bf16 autocast on GPU, backward, clipping, update), `_evaluate` (dev metrics, best
evaluation, early stopping), `_checkpoint`, and `fit`/`run`, the loops over phases and steps.
Under Ray Train (`distill.train.loop`) each worker runs the same engine with its
`WorkerGroup`; the engine starts no worker.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch

from distill.common.hardware import autocast
from distill.common.progress import progress_bar
from distill.metrics import improves

log = logging.getLogger(__name__)
Losses = tuple[torch.Tensor, dict[str, torch.Tensor]]  # the total loss and its named parts


@dataclass
class WorkerGroup:
    """Where this process sits: rank 0 of 1 in process, or a Ray Train worker (DDP: gloo on CPU, nccl on GPU)."""

    rank: int = 0
    world: int = 1
    device: str | None = None  # Ray Train's device for this worker (None: the config's)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module the training step calls: DDP over `model` when there are several workers."""
        if self.world == 1:
            return model
        device = torch.device(self.device) if self.device else None
        ids = [device.index] if device is not None and device.type == "cuda" else None
        # unused parameters: a stage's losses may not read every head (TinyBERT's projections in the
        # prediction stage, the classifier in the intermediate one)
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """`value` averaged over the workers, who all call this at the same steps (a 1-worker run's loss)."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        value = value.detach().clone()
        dist.all_reduce(value)
        return value / self.world

    def report(self, step: int, checkpoint_dir: Path | None) -> None:
        """Tell Ray Train of the checkpoint rank 0 just wrote (every worker calls this at the same steps)."""
        if self.world > 1:
            import ray.train

            checkpoint = ray.train.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
            ray.train.report({"step": step}, checkpoint=checkpoint)


@dataclass
class Phase:
    """Steps with one optimizer and schedule: a student stage, or a whole fine-tuning run."""

    name: str
    total: int  # optimiser steps
    steps_per_epoch: int
    learning_rate: float  # parameter groups may set their own
    warmup_steps: int  # linear warm-up, then linear decay to 0 at `total`
    weight_decay: float
    index: int = 0  # the stage's place in the run, as checkpoints record it
    watch: bool = False  # track the best dev evaluation (and stop early) in this phase


@dataclass
class Settings:
    device: str = "cpu"
    amp: bool = True  # bf16 autocast on a GPU
    max_grad_norm: float = 1.0
    log_every: int = 10
    eval_every: int = 0  # steps between dev evaluations; 0: at each epoch's end
    metric: str = "accuracy"  # the headline dev metric: best evaluation, early stopping
    patience: int = 0  # watched evaluations without a new best before the run stops; 0: never
    checkpoint_every: int | None = None  # steps between checkpoints (and one at each phase end); None: none


class Recipe:
    """What a recipe gives the engine; the defaults suit one without dev set or checkpoints."""

    model: torch.nn.Module  # what is trained (not a DDP wrapper): train mode, gradient clipping
    has_dev = False

    def begin(self, phase: Phase) -> None:  # before a phase: its losses, teacher, ...
        pass

    def parameters(self) -> Iterable:  # AdamW's parameters or parameter groups
        return self.model.parameters()

    def batches(self, phase: Phase, epoch: int, start: int) -> Iterable:  # epoch's batches from `start` on
        raise NotImplementedError

    def prepare(self, batch: Any) -> Any:  # the batch on the device, outside autocast
        return batch

    def loss(self, inputs: Any) -> Losses:  # under autocast
        raise NotImplementedError

    def evaluate(self) -> dict[str, float]:  # dev metrics (rank 0 only)
        return {}

    def save_best(self) -> None:  # the evaluation just made is the best so far
        pass

    def save_checkpoint(self, engine: Engine) -> Path:
        raise NotImplementedError(f"{type(self).__name__} keeps no checkpoints")


class Engine:
    def __init__(self, recipe: Recipe, settings: Settings, group: WorkerGroup | None = None,
                 metrics: TextIO | None = None, state: dict[str, Any] | None = None) -> None:
        self.recipe, self.settings, self.group, self.metrics = recipe, settings, group or WorkerGroup(), metrics
        self.state = state or {"stage": 0, "stage_step": 0, "global_step": 0}  # what a checkpoint records
        self.evaluations: list[dict[str, Any]] = []  # {"step", "epoch", "metrics"} of each dev evaluation
        # a resumed run's clock starts at its checkpoint's: the run's time, not this process's
        self.seconds_before = self.state.get("seconds", 0.0)
        self.data_seconds = self.state.get("data_seconds", 0.0)  # waiting for batches
        self.started = time.perf_counter()
        self.autocast = autocast(settings.device, settings.amp)

    def seconds(self) -> float:
        """Training time of the run so far: earlier processes' up to the checkpoint this one resumed from
        (the steps they ran after it are rerun here, and counted once), then this process's."""
        return self.seconds_before + time.perf_counter() - self.started

    def fit(self, phases: list[Phase], resume: dict[str, Any] | None = None) -> None:
        """The phases from the one the state points at; `resume` (a checkpoint's optimizer, schedule
        and RNG states) continues that phase from its recorded step."""
        first = self.state["stage"]
        for phase in phases[first:]:
            self.recipe.begin(phase)
            self.setup(phase, resume if phase.index == first else None)
            self.run(phase, self.state["stage_step"] if phase.index == first else 0)

    def setup(self, phase: Phase, resume: dict[str, Any] | None = None) -> None:
        from transformers import get_linear_schedule_with_warmup

        self.optimizer = torch.optim.AdamW(self.recipe.parameters(), lr=phase.learning_rate,
                                           weight_decay=phase.weight_decay)
        self.schedule = get_linear_schedule_with_warmup(self.optimizer, phase.warmup_steps, phase.total)
        if resume is not None:
            self.optimizer.load_state_dict(resume["optimizer"])
            self.schedule.load_state_dict(resume["schedule"])
            torch.set_rng_state(resume["rng"])

    def checkpoint_state(self) -> dict[str, Any]:
        """What `setup(resume=...)` restores."""
        return {"optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
                "rng": torch.get_rng_state()}

    def step(self, batch: Any) -> Losses:
        model = self.recipe.model
        model.train()
        inputs = self.recipe.prepare(batch)
        with self.autocast:
            total, parts = self.recipe.loss(inputs)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), self.settings.max_grad_norm)
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total, parts

    def run(self, phase: Phase, step: int = 0) -> None:
        """`phase` from step `step` to its end or early stopping, epoch by epoch."""
        progress = progress_bar(phase.total, phase.name, "step", initial=step, enabled=self.group.is_main)
        stopped = False
        while step < phase.total and not stopped:
            epoch, start = divmod(step, phase.steps_per_epoch)
            fetched = time.perf_counter()
            for batch in self.recipe.batches(phase, epoch, start):
                self.data_seconds += time.perf_counter() - fetched
                losses = self.step(batch)
                step += 1
                self.state["global_step"] += 1
                progress.update(1)
                if step % self.settings.log_every == 0 or step == phase.total:
                    progress.set_postfix(loss=f"{self._log(phase, epoch, *losses):.4f}")
                end_of_epoch = step % phase.steps_per_epoch == 0
                watching = self._evaluate(phase, step, epoch, end_of_epoch)
                stopped = watching and self._stops(step, phase.total)
                self._checkpoint(phase, step, watching, stopped)
                if step >= phase.total or end_of_epoch or stopped:
                    break
                fetched = time.perf_counter()
        progress.close()

    def _write(self, row: dict[str, Any]) -> None:
        if self.metrics is not None:
            self.metrics.write(json.dumps(row) + "\n")
            self.metrics.flush()

    def _log(self, phase: Phase, epoch: int, loss: torch.Tensor, parts: dict[str, torch.Tensor]) -> float:
        """A training row, losses averaged over the workers; returns the loss."""
        mean = self.group.mean
        row = {"step": self.state["global_step"], "stage": phase.name, "epoch": epoch, "loss": mean(loss).item(),
               "lr": self.schedule.get_last_lr()[0], **{f"loss_{n}": mean(v).item() for n, v in parts.items()}}
        self._write(row)
        return row["loss"]

    def _evaluate(self, phase: Phase, step: int, epoch: int, end_of_epoch: bool) -> bool:
        """Dev metrics when due (every `eval_every` steps, else at epoch ends, and at the phase's
        end), on rank 0; True when the evaluation is watched (best, early stopping)."""
        every = self.settings.eval_every
        due = self.recipe.has_dev and bool((every and step % every == 0) or (not every and end_of_epoch)
                                           or step == phase.total)
        if due and self.group.is_main:
            metrics = self.recipe.evaluate()
            self.evaluations.append({"step": self.state["global_step"], "epoch": epoch, "metrics": metrics})
            self._write({"step": self.state["global_step"], "stage": phase.name,
                         **{f"dev_{k}": v for k, v in metrics.items()}})
            if phase.watch:
                self._track_best(metrics)
        return due and phase.watch

    def _track_best(self, metrics: dict[str, float]) -> None:
        metric = self.settings.metric
        best = self.state.get("best") or {"step": None, "metric": metric, "value": None, "metrics": None, "since": 0}
        if improves(metric, metrics[metric], best["value"]):
            best = {"step": self.state["global_step"], "metric": metric, "value": metrics[metric], "metrics": metrics,
                    "since": 0}
            self.recipe.save_best()
        else:
            best["since"] += 1
        self.state["best"] = best

    def _stops(self, step: int, total: int) -> bool:
        """Early stopping: `patience` watched evaluations in a row without a new best (rank 0 decides for all)."""
        patience, best = self.settings.patience, self.state.get("best")
        if not patience or step >= total:
            return False
        stopped = self.group.mean(torch.tensor(float(self.group.is_main and best["since"] >= patience))).item() > 0
        if stopped and self.group.is_main:
            log.info("early stopping at step %d: no better dev %s in %d evaluations (best %.4f at step %s)",
                     self.state["global_step"], self.settings.metric, patience, best["value"], best["step"])
        return stopped

    def _checkpoint(self, phase: Phase, step: int, watching: bool, stopped: bool) -> None:
        """Every `checkpoint_every` steps, at the phase's end, and at each watched evaluation (a
        resumed run's best evaluation then matches the best student kept)."""
        every = self.settings.checkpoint_every
        if not every or not (step % every == 0 or step == phase.total or watching or stopped):
            return
        done = step == phase.total or stopped
        self.state.update(stage=phase.index + 1 if done else phase.index, stage_step=0 if done else step,
                          seconds=self.seconds(), data_seconds=self.data_seconds)
        directory = self.recipe.save_checkpoint(self) if self.group.is_main else None
        self.group.report(self.state["global_step"], directory)
