"""Progress of long loops: a tqdm bar on a terminal; elsewhere (batch jobs, Docker logs, CI) one
log line every `every` seconds instead of a carriage-return flood."""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("distill.progress")


def progress_bar(total: int, desc: str, unit: str = "step", initial: int = 0, every: float = 30.0,
                 enabled: bool = True):
    """A tqdm bar when stderr is a terminal, else a `LineProgress` (the same update/set_postfix/close);
    `enabled=False` (workers other than rank 0) shows nothing."""
    if sys.stderr.isatty() or not enabled:
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled)
    return LineProgress(total, desc, unit, initial, every)


class LineProgress:
    """`desc: n/total unit (p %), r unit/s, key=value` logged at most every `every` seconds, and at the end."""

    def __init__(self, total: int, desc: str, unit: str = "step", initial: int = 0, every: float = 30.0) -> None:
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.n = self.start = self.reported = initial
        self.started = self.last = time.monotonic()
        self.postfix = ""

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every or self.n >= self.total:
            self._report(now)

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if self.n != self.reported:
            self._report(time.monotonic())

    def _report(self, now: float) -> None:
        rate = (self.n - self.start) / max(now - self.started, 1e-9)
        share = 100 * self.n / self.total if self.total else 100.0
        log.info("%s: %d/%d %s (%.0f %%), %.1f %s/s%s", self.desc, self.n, self.total, self.unit, share, rate,
                 self.unit, f", {self.postfix}" if self.postfix else "")
        self.last, self.reported = now, self.n
