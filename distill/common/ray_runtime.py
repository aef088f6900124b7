"""Connect to Ray the way every stage does: embedded local Ray by default, a cluster by address (`auto`, or
the head's HOST:PORT, from a node of the cluster). A dead or wrong address fails in one line within
`ADDRESS_TIMEOUT_SECONDS`, and a request the cluster cannot hold is refused instead of waited for."""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from distill.common.config_io import ConfigError

log = logging.getLogger(__name__)
ADDRESS_TIMEOUT_SECONDS = 10
# An actor's start (a Python process importing Ray Data, torch and its model: 4-7 CPU-seconds) costs about as
# much as a few hundred rows of a BERT-base teacher's work, so `auto` starts no more actors than one per this
# many rows. Where actors start slowly for their work (a tiny teacher, a busy 2-core machine, the test suite),
# the environment variable raises it.
MIN_ROWS_PER_ACTOR = 256
MIN_ROWS_PER_ACTOR_ENV = "DISTILL_MIN_ROWS_PER_ACTOR"
# Ray Data ends a dataset that has produced no output for 30 minutes. A stage's unit of work is a whole shard (one
# call, one commit), and a large teacher on CPU may take longer than that over a shard of 20 000 augmented rows;
# the stage's own progress lines report meanwhile. A real hang still ends, after this long.
SHARD_NO_PROGRESS_TIMEOUT_SECONDS = 6 * 3600


def check_address(address: str) -> None:
    """Refuse, in one line and within `ADDRESS_TIMEOUT_SECONDS`, an address no Ray cluster answers at."""
    if address.startswith("ray://"):
        raise ConfigError(f"{address}: Ray Client (ray://) needs ray[client], which is not installed; run on a node of "
                          "the cluster with --address auto or --address HOST:PORT", "address")
    if address == "auto":
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"{address!r} is not auto or HOST:PORT", "address")
    try:
        socket.create_connection((host, int(port)), timeout=ADDRESS_TIMEOUT_SECONDS).close()
    except OSError as err:
        raise ConfigError(f"no Ray cluster answers at {address} ({err.strerror or err}); start one with `ray start "
                          "--head` or leave --address out for an embedded Ray", "address") from None


_SHARED: dict[str, Any] = {}  # while a `shared_ray_session` runs: its address, and whether a stage started Ray


@contextmanager
def _ctrl_c_deferred() -> Iterator[None]:
    """Hold a Ctrl-C that comes while Ray starts until it has started. Ray forks its processes then, and a
    KeyboardInterrupt raised inside Python's after-fork hooks is swallowed with the logging lock still held,
    so the run would hang at its next log line instead of stopping."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held and callable(previous):
        previous(signal.SIGINT, None)
    elif held and previous == signal.SIG_DFL:
        signal.raise_signal(signal.SIGINT)


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Reuse a running Ray, else start one (local, or a cluster at `address`); only a session started here
    is shut down on exit, so tests and notebooks can share one. Inside `shared_ray_session` the Ray started
    here (at its address, with every CPU) lives on for the pipeline's next stage."""
    import ray

    allow_long_shards()
    shared = bool(_SHARED)
    if address and not shared:
        check_address(address)  # also when a Ray runs already: the address asked for must answer
    if ray.is_initialized():
        yield
        return
    address, num_cpus = (_SHARED["address"], None) if shared else (address, num_cpus)
    try:  # "local" starts our own instance even where `ray start` left a (dead or alive) cluster record behind
        with _ctrl_c_deferred():
            ray.init(address=address or "local", num_cpus=None if address else num_cpus, include_dashboard=False,
                     logging_level=logging.WARNING)
    except ConnectionError as err:
        raise ConfigError(f"no Ray cluster found at {address} ({str(err).splitlines()[0]})", "address") from None
    log.info("ray started: %s", address or "local")
    if shared:
        _SHARED["started"] = True
        yield
        return
    try:
        yield
    finally:
        ray.shutdown()


def allow_long_shards() -> None:
    """Raise this process's Ray Data no-progress timeout to `SHARD_NO_PROGRESS_TIMEOUT_SECONDS` (a user's longer
    one, or a disabled one, stays)."""
    from ray.data import DataContext

    context = DataContext.get_current()
    if 0 < context.execution_no_progress_timeout_s < SHARD_NO_PROGRESS_TIMEOUT_SECONDS:
        context.execution_no_progress_timeout_s = SHARD_NO_PROGRESS_TIMEOUT_SECONDS


@contextmanager
def shared_ray_session(address: str | None = None) -> Iterator[None]:
    """One Ray for a pipeline's stages, started by the first stage that needs it, so the checks each stage
    makes before its actors (columns, label space, the teacher) come before Ray's start-up; shut down at the end."""
    import ray

    if address:
        check_address(address)  # a dead address fails before any stage works
    _SHARED.update(address=address)
    try:
        yield
    finally:
        started = _SHARED.pop("started", False)
        _SHARED.clear()
        if started:
            ray.shutdown()


@dataclass(frozen=True)
class ActorPlan:
    """How many actors a step runs and what each reserves from Ray."""

    actors: int
    cpus: float
    gpus: float

    @property
    def threads(self) -> int:
        """Torch threads per worker: as many as the CPUs it holds."""
        return max(1, int(self.cpus))

    def describe(self) -> str:
        """GPU work runs in actors, CPU work in warm Ray tasks (`distill.common.shard_map`)."""
        if self.gpus:
            return f"{self.actors} actor(s), {self.cpus:g} CPU and {self.gpus:g} GPU each"
        return f"{self.actors} task(s) at a time, {self.cpus:g} CPU each"


def plan_actors(resources: dict[str, float], items: int, workers: int | None = None, cpus_per_actor: float = 1.0,
                gpus_per_actor: float | None = None, uses_gpu: bool = True, auto_gpus: float = 1.0,
                rows: int | None = None) -> ActorPlan:
    """Actors for `items` units of work on a cluster with `resources` (`ray.cluster_resources()`): `workers`,
    else as many as fit at once (an actor pool waits for all of its actors) but one per `MIN_ROWS_PER_ACTOR` of
    the `rows` to process at most, never more than `items`. `gpus_per_actor` None: `auto_gpus` if the step can
    use a GPU and the cluster has one, else 0."""
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
    useful = math.ceil(rows / min_rows_per_actor()) if rows is not None else fit
    actors = min(workers, fit) if workers else min(fit, useful)
    return ActorPlan(max(1, min(actors, items)), cpus_per_actor, gpus)


def min_rows_per_actor() -> int:
    """`MIN_ROWS_PER_ACTOR`, or the positive whole number in `DISTILL_MIN_ROWS_PER_ACTOR`."""
    value = os.environ.get(MIN_ROWS_PER_ACTOR_ENV, "").strip()
    if not value:
        return MIN_ROWS_PER_ACTOR
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{MIN_ROWS_PER_ACTOR_ENV}={value!r}: expected a positive whole number of rows",
                          MIN_ROWS_PER_ACTOR_ENV)
    return int(value)


def check_fits(workers: int, cpus: float, gpus: float, key: str = "workers") -> None:
    """Refuse `workers` of `cpus` CPUs and `gpus` GPUs each that this Ray cluster cannot hold at once (Ray
    Train would wait for them without end)."""
    import ray

    resources = ray.cluster_resources()
    have_cpus, have_gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
    if workers * cpus > have_cpus or workers * gpus > have_gpus:
        raise ConfigError(f"{workers} workers need {workers * cpus:g} CPU and {workers * gpus:g} GPU; the Ray "
                          f"cluster has {have_cpus:g} CPU and {have_gpus:g} GPU", key)
