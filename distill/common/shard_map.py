"""Map a stage's per-shard callable class (load in `__init__`, work in `__call__`) over a Ray dataset.

A fresh Python process that imports Ray Data, torch and a model costs 4-7 CPU-seconds before its first row, and
an actor pool pays that again for every stage and every run on the same Ray. So on CPUs the work runs as Ray
tasks: Ray keeps their worker processes, with their imports, for the next stage, and each process keeps the one
instance it built for this map until a later map asks it for another (`_instance`). On GPUs it stays an actor
pool: Ray never reuses a worker process that ran a GPU task (its GPU memory is released by exiting), so a task
there would reload the model for every shard.
"""

from __future__ import annotations

import uuid
from typing import Any

from distill.common.ray_runtime import ActorPlan

_WARM: dict[str, Any] = {}  # this worker process's instance, by the map that built it: at most one


def _instance(key: str, cls: type, kwargs: dict[str, Any]) -> Any:
    """This process's instance of `cls` for map `key`; an instance of an earlier map is dropped first, so a
    process never holds two stages' models."""
    if key not in _WARM:
        _WARM.clear()
        _WARM[key] = cls(**kwargs)
    return _WARM[key]


def map_shards(dataset, cls: type, kwargs: dict[str, Any], plan: ActorPlan, **options: Any):
    """`dataset.map_batches` of `cls(**kwargs)` with `plan`'s parallelism and resources (lazy, like
    `map_batches`); `options` go to `map_batches` (batch_size, batch_format)."""
    import ray

    if plan.gpus:
        return dataset.map_batches(cls, fn_constructor_kwargs=kwargs, num_cpus=plan.cpus, num_gpus=plan.gpus,
                                   compute=ray.data.ActorPoolStrategy(size=plan.actors), **options)
    key = f"{cls.__qualname__}-{uuid.uuid4().hex}"

    def call(batch):
        return _instance(key, cls, kwargs)(batch)

    call.__name__ = cls.__name__  # Ray names the operator and its processes after it
    return dataset.map_batches(call, num_cpus=plan.cpus, compute=ray.data.TaskPoolStrategy(size=plan.actors), **options)
