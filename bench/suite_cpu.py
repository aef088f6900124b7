"""Where the test suite's CPU goes: a pytest plugin that records, per test, the machine's busy CPU-seconds
(every process: pytest, Ray's daemons and the actors the test starts) and wall seconds, then prints the files
that cost most and writes every figure to `out/suite-cpu.json`.

    .venv/bin/python -m pytest -q -p bench.suite_cpu     # serially, on an otherwise idle machine

Machine-wide counters are the only way to charge a test for the Ray worker processes it makes start; they are
meaningful only when nothing else runs (no `-n`, no background job). Under `make test`'s two workers the suite is
CPU-bound, so its wall time follows the total printed here divided by the cores, not the serial wall time.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

import pytest

OUT = Path("out/suite-cpu.json")
_RESULTS: dict[str, tuple[float, float]] = {}


def busy_cpu_seconds() -> float:
    """user + nice + system + irq + softirq of every core since boot (/proc/stat)."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(v) for v in stat.readline().split()[1:8]]
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / 100.0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    cpu, wall = busy_cpu_seconds(), time.perf_counter()
    yield
    _RESULTS[item.nodeid] = (busy_cpu_seconds() - cpu, time.perf_counter() - wall)


def per_file(results: dict[str, tuple[float, float]]) -> list[tuple[str, float, float, int]]:
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for nodeid, (cpu, wall) in results.items():
        entry = totals[nodeid.split("::")[0]]
        entry[0] += cpu
        entry[1] += wall
        entry[2] += 1
    return sorted(((name, c, w, int(n)) for name, (c, w, n) in totals.items()), key=lambda row: -row[1])


def pytest_terminal_summary(terminalreporter):
    if not _RESULTS:
        return
    files = per_file(_RESULTS)
    cpu, wall = sum(f[1] for f in files), sum(f[2] for f in files)
    lines = ["| file | tests | CPU-s | wall s |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {n} | {c:.0f} | {w:.0f} |" for name, c, w, n in files[:15]]
    lines.append(f"| all {len(files)} files | {len(_RESULTS)} | {cpu:.0f} | {wall:.0f} |")
    terminalreporter.write_line("\n".join(lines))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"tests": _RESULTS, "files": files}, indent=1))
