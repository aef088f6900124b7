"""Connect to Ray the way every stage does: embedded local Ray by default, a cluster by address."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from distill.common.config_io import ConfigError

log = logging.getLogger(__name__)


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Reuse a running Ray, else start one (local, or `address`: "auto" / "ray://host:port"); only a
    session started here is shut down on exit, so tests and notebooks can share one."""
    import ray

    if ray.is_initialized():
        yield
        return
    # "local" starts our own instance even where `ray start` left a (dead or alive) cluster record behind
    ray.init(address=address or "local", num_cpus=None if address else num_cpus, include_dashboard=False,
             logging_level=logging.WARNING)
    log.info("ray started: %s", address or "local")
    try:
        yield
    finally:
        ray.shutdown()


@dataclass(frozen=True)
class ActorPlan:
    """How many actors a step runs and what each reserves from Ray."""

    actors: int
    cpus: float
    gpus: float

    @property
    def threads(self) -> int:
        """Torch threads per actor: as many as the CPUs it holds."""
        return max(1, int(self.cpus))

    def describe(self) -> str:
        return f"{self.actors} actor(s), {self.cpus:g} CPU and {self.gpus:g} GPU each"


def plan_actors(resources: dict[str, float], items: int, workers: int | None = None, cpus_per_actor: float = 1.0,
                gpus_per_actor: float | None = None, uses_gpu: bool = True, auto_gpus: float = 1.0) -> ActorPlan:
    """Actors for `items` units of work on a cluster with `resources` (`ray.cluster_resources()`): `workers`,
    else as many as fit at once (an actor pool waits for all of its actors), never more than `items`.
    `gpus_per_actor` None: `auto_gpus` if the step can use a GPU and the cluster has one, else 0."""
    cluster_gpus, cluster_cpus = float(resources.get("GPU", 0)), float(resources.get("CPU", 1))
    gpus = gpus_per_actor if gpus_per_actor is not None else (auto_gpus if uses_gpu and cluster_gpus else 0.0)
    if gpus and not cluster_gpus:
        raise ConfigError(f"{gpus:g} GPU per actor requested, but the Ray cluster has no GPUs", "gpus_per_actor")
    if gpus > 1 and gpus != int(gpus):
        raise ConfigError(f"{gpus:g} GPU per actor: use a fraction below 1 or a whole number", "gpus_per_actor")
    fit = min(int(cluster_cpus // cpus_per_actor), int(cluster_gpus // gpus) if gpus else float("inf"))
    if fit < 1:
        key = "cpus_per_actor" if cluster_cpus < cpus_per_actor else "gpus_per_actor"
        raise ConfigError(f"one actor needs {cpus_per_actor:g} CPU and {gpus:g} GPU, more than the cluster's "
                          f"{cluster_cpus:g} CPU and {cluster_gpus:g} GPU", key)
    actors = min(workers, fit) if workers else fit
    return ActorPlan(max(1, min(actors, items)), cpus_per_actor, gpus)
