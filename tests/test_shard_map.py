"""CPU stages run as Ray tasks whose worker processes stay warm: a later map on the same Ray runs in the processes
an earlier one started, and each process builds one instance per map, dropping the earlier map's."""

from __future__ import annotations

import os

from distill.common.ray_runtime import ActorPlan
from distill.common.shard_map import map_shards
from tests.process_probe import ProcessReport


def _run(ray, tag: str, shards: int = 6) -> list[dict]:
    items = ray.data.from_items([{"shard": i} for i in range(shards)])
    return map_shards(items, ProcessReport, {"tag": tag}, ActorPlan(actors=2, cpus=1, gpus=0),
                      batch_format="pyarrow", batch_size=1).take_all()


def _instances(rows: list[dict]) -> dict[int, set[int]]:
    built: dict[int, set[int]] = {}
    for row in rows:
        built.setdefault(row["pid"], set()).add(row["serial"])
    return built


def test_a_cpu_map_builds_one_instance_per_process_and_a_later_map_reuses_the_processes(ray_local):
    first, second = _run(ray_local, "first"), _run(ray_local, "second")
    assert len(first) == len(second) == 6 and {r["tag"] for r in second} == {"second"}
    first_built, second_built = _instances(first), _instances(second)
    assert all(len(serials) == 1 for serials in [*first_built.values(), *second_built.values()])
    assert os.getpid() not in first_built  # the work ran in Ray's worker processes, not in the driver
    warm = set(first_built) & set(second_built)
    assert warm, "the second map started fresh processes instead of reusing the first map's"
    for pid in warm:  # a new instance for the new map, in the same process
        assert second_built[pid] != first_built[pid]
