"""Train a student on a teacher cache: in this process (`distill.train.student`, on the training
engine), or with `workers` > 1 on Ray Train workers (`TorchTrainer`, DDP: gloo on CPU, nccl on GPU).

Every worker runs the same student recipe on the same engine, with its `WorkerGroup`, over the
same memory-mapped cache (shared or staged storage): the epoch's global batches are drawn exactly
as in a 1-worker run (seed, epoch, length grouping) and each worker trains on its share of every
global batch (rows rank, rank + N, ...). DDP averages the gradients, so N workers take the same
optimiser steps with the same schedule as one (only dropout masks differ). Rank 0 alone writes
metrics, checkpoints, the report and the student; each checkpoint is also reported to Ray Train,
which restarts a group that lost a worker (`FailureConfig`): it resumes from `checkpoint-last`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from distill.cache import load
from distill.common.columns import Columns
from distill.common.config_io import ConfigError
from distill.errors import UserError
from distill.storage.lock import OutputLock
from distill.train.config import TrainConfig
from distill.train.engine import WorkerGroup
from distill.train.run_dir import BEST_DIR, RAY_DIR, check_run_dir, run_record, start_run_dir
from distill.train.student import TrainResult, build_context, result_from_run_dir, run_student

__all__ = ["BEST_DIR", "TrainResult", "build_context", "train"]
log = logging.getLogger(__name__)
MAX_FAILURES = 3  # worker-group restarts before the run fails


class RayTrainFailed(UserError, RuntimeError):
    """A multi-worker run Ray Train gave up on, in one line."""


def _worker_loop(config: dict[str, Any]) -> None:
    import ray.train
    import ray.train.torch

    context = ray.train.get_context()
    group = WorkerGroup(context.get_world_rank(), context.get_world_size(), str(ray.train.torch.get_device()))
    run_student(**config["kwargs"], group=group)


def _claim(kwargs: dict[str, Any], workers: int) -> None:
    """Check and claim the run directory before Ray Train writes into it (`_ray/`): a refused run
    fails here, and `overwrite` removes an earlier run, Ray Train's files included."""
    cache = load(kwargs["cache_dir"], verify="size")
    record = run_record(kwargs["config"].resolved(), kwargs["cache_dir"], cache.fingerprint, False, workers)
    run_dir = Path(kwargs["run_dir"])
    start_run_dir(run_dir, record, check_run_dir(run_dir, record["fingerprint"], kwargs["overwrite"]))


def train_on_ray(kwargs: dict[str, Any], workers: int, address: str | None, gpus_per_worker: float) -> TrainResult:
    """`run_student(**kwargs)` on `workers` Ray Train workers; the result is read back from the run directory."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig, TrainingFailedError
    from ray.train.torch import TorchTrainer

    from distill.common.ray_runtime import check_fits, ray_session

    run_dir = Path(kwargs["run_dir"]).resolve()
    kwargs = {**kwargs, "run_dir": str(run_dir), "cache_dir": str(kwargs["cache_dir"])}
    started = time.perf_counter()
    resources = {"CPU": 1.0, **({"GPU": gpus_per_worker} if gpus_per_worker else {})}
    with ray_session(address):  # a dead address, or more workers than the cluster holds: refused before the claim
        check_fits(workers, resources["CPU"], gpus_per_worker)
        _claim(kwargs, workers)
        trainer = TorchTrainer(
            _worker_loop, train_loop_config={"kwargs": kwargs},
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=bool(gpus_per_worker),
                                         resources_per_worker=resources),
            run_config=RunConfig(storage_path=str(run_dir / RAY_DIR), name="train",
                                 failure_config=FailureConfig(max_failures=MAX_FAILURES)),
        )
        try:
            trainer.fit()
        except TrainingFailedError as err:  # the workers' tracebacks are in Ray's log above
            cause = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
            raise RayTrainFailed(f"Ray Train stopped ({cause.strip()[:300]}); rerun to resume from the last "
                                 f"checkpoint (Ray Train's files: {run_dir / RAY_DIR})") from None
    log.info("%d workers trained %s in %.1fs", workers, run_dir, time.perf_counter() - started)
    return result_from_run_dir(run_dir, time.perf_counter() - started)


def train(config: TrainConfig, cache_dir: str | Path, run_dir: str | Path, dev_file: str | Path | None = None,
          dev_columns: Columns | None = None, online: bool = False, teacher_report: bool = True,
          teacher: str | None = None, overwrite: bool = False, verify: str = "full", workers: int = 1,
          address: str | None = None, gpus_per_worker: float = 0.0) -> TrainResult:
    """Train the recipe's student on `cache_dir` (a local or remote cache; nothing else is read).

    Resumes from `run_dir/checkpoint-last` when `run_dir` holds this same recipe and cache; refuses
    another run's directory unless `overwrite`. `teacher` (a path or hub name) is accepted only if
    its files match the cache's teacher fingerprint; it is needed by students that copy teacher
    weights and by `online`, and gives the report a teacher row. `verify`: `full` checks every
    cache file's sha256 before the first step, `size` only sizes (for very large caches).
    `workers` > 1 trains on that many Ray Train workers (`address`: a Ray cluster, else embedded Ray)."""
    if workers < 1:
        raise ConfigError(f"{workers} must be >= 1", "workers")
    kwargs = dict(config=config, cache_dir=cache_dir, run_dir=run_dir, dev_file=dev_file, dev_columns=dev_columns,
                  teacher_report=teacher_report, teacher=teacher, overwrite=overwrite, verify=verify)
    if online and workers > 1:
        raise ConfigError("--online runs in one process; drop --workers", "workers")
    with OutputLock(run_dir):  # one writer per run directory, as for the stages
        if workers == 1:
            return run_student(**kwargs, online=online)
        return train_on_ray(kwargs, workers, address, gpus_per_worker)
