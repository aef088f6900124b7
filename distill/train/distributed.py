"""Training on several workers with Ray Train (`TorchTrainer`, DDP: gloo on CPU, nccl on GPU).

Every worker runs the same loop (`distill.train.loop.train`) over the same memory-mapped cache
(shared or staged storage): the epoch's global batches are drawn exactly as in a 1-worker run
(seed, epoch, length grouping), and each worker trains on its share of every global batch (rows
rank, rank + N, ...). DDP averages the gradients, so N workers take the same optimiser steps on
the same global batches as one worker, with the same learning-rate schedule: "the same recipe"
means the same global batch, the same steps and the same schedule (dropout masks differ). Rank 0
alone writes metrics, checkpoints, the report and the final student; each checkpoint it writes
(`checkpoint-last`, the same contents as a 1-worker run's) is also reported to Ray Train. A worker
killed mid-run makes Ray Train restart the group (`FailureConfig`), which resumes from the run
directory's last checkpoint and finishes the same number of steps.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)
MAX_FAILURES = 3  # worker-group restarts before the run fails


@dataclass
class WorkerGroup:
    """Where this process sits in the run: rank 0 of 1 for ordinary in-process training."""

    rank: int = 0
    world: int = 1
    device: str | None = None  # Ray Train's device for this worker (None: the config's)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_ray(cls) -> "WorkerGroup":
        import ray.train
        import ray.train.torch

        context = ray.train.get_context()
        return cls(context.get_world_rank(), context.get_world_size(), str(ray.train.torch.get_device()))

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
        """`value` averaged over the workers (every worker calls this at the same steps): the
        global batch's loss, as a 1-worker run logs it."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        value = value.detach().clone()
        dist.all_reduce(value)
        return value / self.world

    def report(self, step: int, checkpoint_dir: Path) -> None:
        """Tell Ray Train of a checkpoint rank 0 just wrote (every worker calls this at the same steps)."""
        if self.world == 1:
            return
        import ray.train

        checkpoint = ray.train.Checkpoint.from_directory(str(checkpoint_dir)) if self.is_main else None
        ray.train.report({"step": step}, checkpoint=checkpoint)


def _worker_loop(config: dict[str, Any]) -> None:
    from distill.train.loop import train

    train(**config["kwargs"], _group=WorkerGroup.from_ray())


def train_on_ray(kwargs: dict[str, Any], workers: int, address: str | None, gpus_per_worker: float):
    """Run `train(**kwargs)` on `workers` Ray Train workers; the result is read back from the run directory."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from distill.common.ray_runtime import ray_session
    from distill.train.loop import result_from_run_dir

    run_dir = Path(kwargs["run_dir"]).resolve()
    kwargs = {**kwargs, "run_dir": str(run_dir), "cache_dir": str(kwargs["cache_dir"])}
    started = time.perf_counter()
    resources = {"CPU": 1.0, **({"GPU": gpus_per_worker} if gpus_per_worker else {})}
    with ray_session(address):
        trainer = TorchTrainer(
            _worker_loop, train_loop_config={"kwargs": kwargs},
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=bool(gpus_per_worker),
                                         resources_per_worker=resources),
            run_config=RunConfig(storage_path=str(run_dir / "_ray"), name="train",
                                 failure_config=FailureConfig(max_failures=MAX_FAILURES)),
        )
        trainer.fit()
    log.info("%d workers trained %s in %.1fs", workers, run_dir, time.perf_counter() - started)
    return result_from_run_dir(run_dir, time.perf_counter() - started)
