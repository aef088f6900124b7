"""Connect to Ray the way every stage does: embedded local Ray by default, a cluster by address."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

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


def cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))
