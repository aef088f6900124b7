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
    """Reuse a running Ray, else start one (local, or `address`: "auto" / "ray://host:port").

    Only a session started here is shut down on exit, so tests and notebooks can share one.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    ray.init(
        # "local" starts our own instance even where `ray start` left a cluster record behind
        # (ray.init() alone would try to join that cluster, dead or alive).
        address=address or "local",
        num_cpus=None if address else num_cpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
    )
    log.info("ray started: %s", "local" if not address else address)
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


def plan_actors(
    resources: dict[str, float],
    items: int,
    workers: int | None = None,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float | None = None,
    uses_gpu: bool = True,
    auto_gpus: float = 1.0,
) -> ActorPlan:
    """Actors for `items` units of work on a cluster with `resources` (`ray.cluster_resources()`).

    `gpus_per_actor` None means `auto_gpus` when the step can use a GPU (`uses_gpu`) and the
    cluster has one, else 0; a fraction lets several actors share a GPU. The count is `workers`,
    else what the cluster holds (GPUs / gpus_per_actor on GPU clusters, CPUs / cpus_per_actor
    otherwise), never more than `items` nor more than Ray could place at once (an actor pool
    waits for all of its actors). A request the cluster cannot meet is a one-line `ConfigError`
    naming `gpus_per_actor` or `cpus_per_actor`.
    """
    cluster_gpus = float(resources.get("GPU", 0))
    cluster_cpus = float(resources.get("CPU", 1))
    gpus = gpus_per_actor if gpus_per_actor is not None else (auto_gpus if uses_gpu and cluster_gpus else 0.0)
    if gpus and not cluster_gpus:
        raise ConfigError(f"{gpus:g} GPU per actor requested, but the Ray cluster has no GPUs", "gpus_per_actor")
    if gpus > 1 and gpus != int(gpus):
        raise ConfigError(f"{gpus:g} GPU per actor: use a fraction below 1 or a whole number", "gpus_per_actor")
    fit = int(cluster_cpus // cpus_per_actor)
    if gpus:
        fit = min(fit, int(cluster_gpus // gpus))
    if fit < 1:
        key = "cpus_per_actor" if cluster_cpus < cpus_per_actor else "gpus_per_actor"
        raise ConfigError(f"one actor needs {cpus_per_actor:g} CPU and {gpus:g} GPU, more than the cluster's "
                          f"{cluster_cpus:g} CPU and {cluster_gpus:g} GPU", key)
    actors = min(workers, fit) if workers else fit
    return ActorPlan(max(1, min(actors, items)), cpus_per_actor, gpus)
