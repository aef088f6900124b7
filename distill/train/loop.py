"""The training loop: students learn from cached teacher outputs (or, with `online`, from the
teacher run every step). Plain PyTorch: AdamW, linear warm-up/decay, gradient clipping, bf16
autocast on GPU; metrics to `metrics.jsonl`, a checkpoint every `checkpoint_every` steps and at
each stage end, resume from the last checkpoint after a kill, and a final report."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from distill.cache import TeacherCache, load
from distill.cache.assets import read_input_embeddings
from distill.cache.teacher_ref import find_teacher, require_teacher
from distill.common.config_io import ConfigError
from distill.common.labels import LabelSpace
from distill.common.progress import progress_bar
from distill.common.text_inputs import Columns
from distill.metrics import check_metrics, default_metrics, improves
from distill.model_eval import TASK_NAME, task_record
from distill.storage.atomic import write_json_atomic
from distill.students import get_student, load_student
from distill.students.context import BuildContext
from distill.teacher_batch import TeacherBatch
from distill.train.checkpoint import load_checkpoint, read_state, save_checkpoint, save_student_atomic
from distill.train.config import TrainConfig
from distill.train.distributed import WorkerGroup
from distill.train.data import CacheBatches, dev_batches, epoch_loader, token_dev_batches
from distill.train.evaluate import evaluate
from distill.train.requirements import check_features
from distill.train.run_dir import check_run_dir, run_fingerprint, start_run_dir

log = logging.getLogger(__name__)
STUDENT_DIR = "student"
METRICS_NAME = "metrics.jsonl"
TIMING_NAME = "timing.json"  # the training loop's own seconds (a multi-worker run's result reads it)
BEST_DIR = "student-best"  # keep_best: the best dev evaluation's student so far


@dataclass
class TrainResult:
    run_dir: Path
    student_dir: Path
    steps: int
    seconds: float
    data_seconds: float
    dev: dict[str, float] | None
    report: dict[str, Any] | None = None
    loop_seconds: float | None = None  # the training loop alone (`seconds` of a multi-worker run includes Ray's start-up)
    best: dict[str, Any] | None = None  # keep_best / early stopping: the best evaluation (step, metric, value, metrics)


def build_context(cache: TeacherCache, teacher_dir: Path | None) -> BuildContext:
    """What students are built from: the cache's account of the teacher, and its weights only on request."""
    dims = cache.dims
    return BuildContext(
        teacher_config=cache.teacher_config(),
        num_labels=dims.num_labels,
        num_layers=dims.num_layers,
        vocab_size=dims.vocab_size,
        pad_token_id=cache.manifest["tokenizer"]["pad_token_id"],
        pair=cache.is_pair,
        token_ids=cache.token_ids,
        input_embeddings=lambda: read_input_embeddings(cache.path),
        teacher_weights=lambda why: require_teacher(cache.manifest, teacher_dir, why),
        head=cache.features.head,
    )


def _wanted(losses, student_layers: int, teacher_layers: int) -> dict[str, set[int]]:
    """Teacher features (and their layers) a stage's losses read."""
    wanted: dict[str, set[int]] = {}
    for loss in losses.values():
        for feature, layers in loss.needs(student_layers, teacher_layers).items():
            wanted.setdefault(feature, set()).update(layers)
    return wanted


def dev_metric_names(chosen: list[str] | None, task: str, num_labels: int) -> list[str]:
    """The recipe's metrics, checked against the cache's task, or the task's usual ones."""
    try:
        return check_metrics(chosen, task) if chosen else default_metrics(task, num_labels)
    except ValueError as err:
        raise ConfigError(str(err), "metrics") from None


def _track_best(state: dict[str, Any], dev_metrics: dict[str, float], metric: str, save_best) -> None:
    """Record this evaluation in `state["best"]`; `save_best()` when it is a new best."""
    best = state.get("best") or {"step": None, "metric": metric, "value": None, "metrics": None, "since": 0}
    if improves(metric, dev_metrics[metric], best["value"]):
        best = {"step": state["global_step"], "metric": metric, "value": dev_metrics[metric], "metrics": dev_metrics,
                "since": 0}
        save_best()
    else:
        best["since"] += 1
    state["best"] = best


def _device(config: TrainConfig) -> str:
    if config.device != "auto":
        return config.device
    return "cuda" if torch.cuda.is_available() else "cpu"


def train(
    config: TrainConfig,
    cache_dir: str | Path,
    run_dir: str | Path,
    dev_file: str | Path | None = None,
    dev_columns: Columns | None = None,
    online: bool = False,
    teacher_report: bool = True,
    teacher: str | None = None,
    overwrite: bool = False,
    verify: str = "full",
    workers: int = 1,
    address: str | None = None,
    gpus_per_worker: float = 0.0,
    _group: WorkerGroup | None = None,
) -> TrainResult:
    """Train the recipe's student on `cache_dir` (a local or remote cache; nothing else is read).

    Resumes from `run_dir/checkpoint-last` when `run_dir` holds this same recipe and cache; refuses
    another run's directory unless `overwrite`. `teacher` (a path or hub name) is accepted only if
    its files match the cache's teacher fingerprint; it is needed by students that copy teacher
    weights and by `online`, and gives the report a teacher row. `verify`: `full` checks every
    cache file's sha256 before the first step, `size` only sizes (for very large caches).
    `workers` > 1 trains on that many Ray Train workers (`distill.train.distributed`; `address`: a
    Ray cluster, else embedded Ray) with the same global batches, steps and schedule."""
    from transformers import get_linear_schedule_with_warmup

    if workers < 1:
        raise ConfigError(f"{workers} must be >= 1", "workers")
    if workers > 1 and _group is None:
        if online:
            raise ConfigError("--online runs in one process; drop --workers", "workers")
        from distill.train.distributed import train_on_ray

        kwargs = dict(config=config, cache_dir=cache_dir, run_dir=run_dir, dev_file=dev_file, dev_columns=dev_columns,
                      teacher_report=teacher_report, teacher=teacher, overwrite=overwrite, verify=verify)
        return train_on_ray(kwargs, workers, address, gpus_per_worker)
    group = _group or WorkerGroup()
    run_dir = Path(run_dir)
    cache = load(cache_dir, verify=verify)
    stages = config.stage_configs()
    fingerprint = run_fingerprint(config.resolved(), cache.fingerprint, online)
    resuming = check_run_dir(run_dir, fingerprint, overwrite)
    teacher_dir = find_teacher(cache.manifest, teacher)
    if online:
        require_teacher(cache.manifest, teacher_dir, "--online")
        if cache.features.head != "classification":
            raise ConfigError("--online runs sequence-classifier teachers only; general distillation and token "
                              "tasks read their cache")
    if dev_file and cache.features.head not in ("classification", "token_classification"):
        raise ConfigError(f"--eval scores a classifier; {cache.path} holds {cache.features.head} teacher targets "
                          "(general distillation): evaluate the student after a task stage")
    num_teacher_layers = cache.dims.num_layers
    device = group.device or _device(config)
    torch.manual_seed(config.seed)
    state = read_state(run_dir) if resuming else None
    if state is not None:
        student, extra = load_checkpoint(run_dir)
        log.info("resuming from %s at stage %d, step %d", run_dir, state["stage"], state["global_step"])
    else:
        student = get_student(config.student["name"]).build(config.student_options(), build_context(cache, teacher_dir))
        extra, state = None, {"stage": 0, "stage_step": 0, "global_step": 0}
    if group.world > 1:  # dropout masks: one stream per worker (the weights start equal: DDP broadcasts rank 0's)
        torch.manual_seed(config.seed * 1000 + group.rank + 1 + state["global_step"])
    check_features(stages, cache.features, student.num_layers, num_teacher_layers, str(cache.path))
    if any("attention" in _wanted(s.build_losses(), student.num_layers, num_teacher_layers) for s in stages):
        student.capture_attention()
    student.to(device)
    tokenizer = cache.tokenizer()
    labels = LabelSpace.from_config({"num_labels": cache.dims.num_labels, **(cache.manifest.get("labels") or {})})
    dev = None
    if dev_file and cache.features.per_word:
        dev = token_dev_batches(dev_file, dev_columns or Columns(), tokenizer, labels, labels.names(),
                                cache.manifest["tokenizer"]["max_length"])
    elif dev_file:
        dev = dev_batches(dev_file, dev_columns or Columns(), tokenizer, labels, cache.manifest["tokenizer"]["max_length"])
    task = cache.features.task
    metric_names = dev_metric_names(config.metrics, task, cache.dims.num_labels)
    watch_best = config.keep_best or config.early_stopping_patience > 0
    if watch_best and dev is None:
        raise ConfigError("keep_best and early_stopping_patience score the student on a dev set: pass --eval FILE",
                          "keep_best" if config.keep_best else "early_stopping_patience")
    if dev is not None:
        log.info("dev set: %s; metrics: %s", dev.describe(), ", ".join(metric_names))
    if group.is_main:
        start_run_dir(run_dir, {"fingerprint": fingerprint, "recipe": config.resolved(), "online": online,
                                "workers": group.world, "cache": {"path": str(cache_dir),
                                                                  "fingerprint": cache.fingerprint}}, resuming)
    dataset = CacheBatches(cache.path)
    steps_per_epoch = math.ceil(len(dataset) / config.batch_size)
    metrics = open(run_dir / METRICS_NAME if group.is_main else os.devnull, "a", encoding="utf-8")
    model = group.wrap(student)  # what the training step calls (DDP with several workers)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") and config.amp == "auto" else nullcontext()
    teacher_online = None
    attention_weights = cache.attention_weights()
    if attention_weights is not None:  # attention: recompute — moved to the device once
        attention_weights = TeacherBatch({}, num_teacher_layers, attention_weights=attention_weights).to(device).attention_weights
    started, data_seconds, dev_metrics = time.perf_counter(), 0.0, None
    for stage_index in range(state["stage"], len(stages)):
        stage = stages[stage_index]
        losses = stage.build_losses()
        wanted = _wanted(losses, student.num_layers, num_teacher_layers)
        needs_hidden = bool(wanted.keys() & {"cls", "hidden", "embedding"})
        attention_layers = sorted(wanted.get("attention", ()))
        if online:
            from distill.train.online import OnlineTeacher

            hidden = sorted(wanted.get("hidden", set()) | ({0} if "embedding" in wanted else set()))
            teacher_online = OnlineTeacher(str(teacher_dir), sorted(wanted.get("cls", [])), hidden,
                                           sorted(wanted.get("attention", [])), device)
        total = stage.max_steps or max(1, int(stage.epochs * steps_per_epoch))
        optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=stage.learning_rate,
                                      weight_decay=stage.weight_decay)
        schedule = get_linear_schedule_with_warmup(optimizer, int(stage.warmup_ratio * total), total)
        if extra is not None and stage_index == state["stage"]:
            optimizer.load_state_dict(extra["optimizer"])
            schedule.load_state_dict(extra["schedule"])
            torch.set_rng_state(extra["rng"])
        step = state["stage_step"] if stage_index == state["stage"] else 0
        last_stage, stopped = stage_index == len(stages) - 1, False
        progress = progress_bar(total, stage.name, "step", initial=step, enabled=group.is_main)
        while step < total and not stopped:
            epoch, start = divmod(step, steps_per_epoch)
            loader = epoch_loader(dataset, config.batch_size, config.seed + stage_index, epoch, start,
                                  config.num_workers, pin_memory=device.startswith("cuda"),
                                  group_by_length=config.group_by_length, rank=group.rank, world=group.world)
            fetched = time.perf_counter()
            for tensors in loader:
                data_seconds += time.perf_counter() - fetched
                student.train()
                targets = TeacherBatch(tensors, num_teacher_layers, cache.features.cls_layers, attention_weights,
                                       cache.features.topk_temperature).to(device)
                if teacher_online is not None:
                    targets = teacher_online(targets.tensors)
                with autocast:
                    output = model(targets.tensors, needs_hidden=needs_hidden, attention_layers=attention_layers)
                    values = {name: loss(output, targets) for name, loss in losses.items()}
                    total_loss = sum(losses[n].weight * v for n, v in values.items())
                total_loss.backward()
                torch.nn.utils.clip_grad_norm_(student.parameters(), config.max_grad_norm)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                state["global_step"] += 1
                progress.update(1)
                if step % config.log_every == 0 or step == total:
                    row = {"step": state["global_step"], "stage": stage.name, "epoch": epoch,
                           "loss": group.mean(total_loss).item(), "lr": schedule.get_last_lr()[0],
                           **{f"loss_{n}": group.mean(v).item() for n, v in values.items()}}
                    metrics.write(json.dumps(row) + "\n")
                    metrics.flush()
                    progress.set_postfix(loss=f"{row['loss']:.4f}")
                end_of_epoch = step % steps_per_epoch == 0
                evaluating = dev is not None and ((config.eval_every and step % config.eval_every == 0) or
                                                  (not config.eval_every and end_of_epoch) or step == total)
                watching = evaluating and watch_best and last_stage
                if evaluating and group.is_main:
                    student.eval()
                    dev_metrics = evaluate(lambda t: student(t).logits, dev, device, task, metric_names)
                    metrics.write(json.dumps({"step": state["global_step"], "stage": stage.name,
                                              **{f"dev_{k}": v for k, v in dev_metrics.items()}}) + "\n")
                    metrics.flush()
                    if watching:
                        _track_best(state, dev_metrics, metric_names[0],
                                    lambda: config.keep_best and save_student_atomic(student, run_dir / BEST_DIR))
                if watching and config.early_stopping_patience and step < total:
                    patience_out = group.is_main and state["best"]["since"] >= config.early_stopping_patience
                    stopped = group.mean(torch.tensor(float(patience_out))).item() > 0  # rank 0 decides for all
                    if stopped and group.is_main:
                        log.info("early stopping at step %d: no better dev %s in %d evaluations (best %.4f at step %s)",
                                 state["global_step"], metric_names[0], config.early_stopping_patience,
                                 state["best"]["value"], state["best"]["step"])
                if step % config.checkpoint_every == 0 or step == total or watching or stopped:
                    # a checkpoint at each watched evaluation keeps `best` and student-best/ in step on resume
                    done = step == total or stopped
                    state.update(stage=stage_index + 1 if done else stage_index, stage_step=0 if done else step)
                    if group.is_main:
                        save_checkpoint(run_dir, student, optimizer, schedule, state)
                    group.report(state["global_step"], run_dir / "checkpoint-last")
                if step >= total or end_of_epoch or stopped:
                    break
                fetched = time.perf_counter()
        progress.close()
        extra = None
    metrics.close()
    seconds = time.perf_counter() - started
    student_dir = run_dir / STUDENT_DIR
    best = state.get("best") if watch_best else None
    if not group.is_main:
        return TrainResult(run_dir, student_dir, state["global_step"], seconds, data_seconds, None, best=best)
    if config.keep_best and best and best["step"] is not None and (run_dir / BEST_DIR).exists():
        student = load_student(run_dir / BEST_DIR).to(device)
        dev_metrics = best["metrics"]
        log.info("keeping the best evaluation: step %d, dev %s %.4f", best["step"], best["metric"], best["value"])
    student.save(student_dir)
    tokenizer.save_pretrained(student_dir)
    write_json_atomic(student_dir / TASK_NAME, task_record(task, labels, cache.manifest["tokenizer"]["max_length"]))
    write_json_atomic(run_dir / TIMING_NAME, {"seconds": seconds, "data_seconds": data_seconds, "workers": group.world,
                                              "steps": state["global_step"], "best": best})
    log.info("trained %s for %d steps in %.1fs (%.0f%% waiting for data) -> %s", config.student["name"],
             state["global_step"], seconds, 100 * data_seconds / max(seconds, 1e-9), student_dir)
    report = None
    if dev is not None:
        from distill.train.plot import plot_metrics
        from distill.train.report import write_report

        report = write_report(run_dir, student, student_dir, teacher_dir if teacher_report else None, dev, device,
                              None if teacher_report else "not requested (--no-teacher-report)", task, metric_names)
        plot_metrics(run_dir / METRICS_NAME, run_dir / "curves.png", metric_names[0])
    return TrainResult(run_dir, student_dir, state["global_step"], seconds, data_seconds, dev_metrics, report, best=best)


def result_from_run_dir(run_dir: Path, seconds: float) -> TrainResult:
    """A finished run's result as its files record it (after a multi-worker run)."""
    state = read_state(run_dir) or {"global_step": 0}
    report_path = run_dir / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    dev = {k: v for k, v in (report or {}).get("student", {}).items() if isinstance(v, float)} or None
    timing = json.loads((run_dir / TIMING_NAME).read_text()) if (run_dir / TIMING_NAME).exists() else {}
    return TrainResult(run_dir, run_dir / STUDENT_DIR, state["global_step"], seconds, timing.get("data_seconds", 0.0),
                       dev, report, timing.get("seconds"), timing.get("best"))
