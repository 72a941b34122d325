"""Separators that misbehave on purpose, for the Dask executor's fault tests. A marker file
makes the fault happen once: the first call creates it and fails, later calls run normally."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np

from demixbench import STEMS
from demixbench.separators import Separator


class _Once(Separator):
    sources = STEMS
    sample_rate = None

    def __init__(self, marker: str, track_length: int | None = None):
        self.marker = marker
        self.track_length = track_length  # misbehave only on mixtures of this length

    def params(self):
        return {"marker": self.marker, "track_length": self.track_length}

    def _first_time(self, mixture) -> bool:
        if self.track_length is not None and mixture.shape[-1] != self.track_length:
            return False
        if Path(self.marker).exists():
            return False
        Path(self.marker).touch()
        return True

    def _estimates(self, mixture):
        return {s: mixture * np.float32(0.25) for s in self.sources}


class KillOnce(_Once):
    """Kills its own worker process on its first call."""

    name = "kill_once"

    def _separate(self, mixture, sample_rate, references):
        if self._first_time(mixture):
            os.kill(os.getpid(), signal.SIGKILL)
        return self._estimates(mixture)


class FailOnce(_Once):
    """Raises on its first call (a real error in a unit)."""

    name = "fail_once"

    def _separate(self, mixture, sample_rate, references):
        if self._first_time(mixture):
            raise RuntimeError("this unit breaks once")
        return self._estimates(mixture)


class WantsGpu(Separator):
    """Asks for a GPU worker and writes the name of the worker that ran it to ``log``."""

    name = "wants_gpu"
    sources = STEMS
    sample_rate = None

    def __init__(self, log: str):
        self.log = log

    def params(self):
        return {"log": self.log}

    @classmethod
    def worker_resources(cls, params):
        return {"GPU": 1}

    def _separate(self, mixture, sample_rate, references):
        from distributed import get_worker

        with open(self.log, "a") as f:
            f.write(f"{get_worker().name}\n")
        return {s: mixture * np.float32(0.25) for s in self.sources}
