"""Wall time and peak resident memory of a block of code.

Peak memory is sampled from the process's resident set size (``/proc/self/statm`` on Linux)
by a background thread every few milliseconds, so it sees allocations made by numpy, torch or
any native library alike. Where ``/proc`` is absent, the block's peak is unknown (``None``).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_STATM = "/proc/self/statm"


def rss_mb() -> float | None:
    try:
        with open(_STATM) as f:
            return int(f.read().split()[1]) * _PAGE / 2**20
    except OSError:
        return None


@dataclass
class Measurement:
    seconds: float = 0.0
    peak_rss_mb: float | None = None
    start_rss_mb: float | None = None

    @property
    def peak_delta_mb(self) -> float | None:
        """Peak resident memory above the block's start: the block's own peak, not the
        process's (models loaded before it are not counted)."""
        if self.peak_rss_mb is None or self.start_rss_mb is None:
            return None
        return max(0.0, self.peak_rss_mb - self.start_rss_mb)


class measure:
    """``with measure() as m: ...`` then ``m.seconds``, ``m.peak_rss_mb``."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.result = Measurement()
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            now = rss_mb()
            if now is not None and (self.result.peak_rss_mb or 0) < now:
                self.result.peak_rss_mb = now

    def __enter__(self) -> Measurement:
        self.result.start_rss_mb = self.result.peak_rss_mb = rss_mb()
        self._thread = None
        if self.result.start_rss_mb is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        self._t0 = time.perf_counter()
        return self.result

    def __exit__(self, *exc) -> None:
        self.result.seconds = time.perf_counter() - self._t0
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        now = rss_mb()
        if now is not None and (self.result.peak_rss_mb or 0) < now:
            self.result.peak_rss_mb = now
