"""Execute a planned run against a results store.

The :class:`Runner` plans (:mod:`.plan`), registers the run in the store, hands the missing
units to an executor (:mod:`.executors`: this process by default, Dask workers on request) and
writes each unit's rows in one transaction as it comes back, so an interrupted run resumes
with exactly the missing units. Every executor returns rows, records and notices the same way.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

from ..datasets import Dataset
from ..errors import DemixbenchError
from ..interrupts import interrupted
from ..separators import SeparatorRegistry
from .config import DEFAULT_METRICS, RunConfig, RunSummary
from .executors import LocalExecutor, UnitTask
from .plan import Planner
from .provenance import machine, versions
from .store import ResultsStore, UnitRecord

__all__ = ["DEFAULT_METRICS", "RunConfig", "RunSummary", "Runner"]

Progress = Any  # a callable taking one line of text


class UnitProgress(Protocol):
    def start(self, index: int, total: int, label: str) -> None: ...

    def done(self) -> None: ...


class Runner(Planner):
    """Executes a :class:`RunConfig` against a :class:`ResultsStore`."""

    def __init__(self, config: RunConfig, store: ResultsStore, cache_dir: str | Path | None = None,
                 registry: SeparatorRegistry | None = None, progress: Progress | None = None,
                 units: UnitProgress | None = None, datasets: list[Dataset] | None = None,
                 executor: Any = None):
        if executor is not None and datasets is not None:
            raise DemixbenchError("datasets opened in this process (evaluate) run on the local "
                                  "executor only")
        super().__init__(config, registry, datasets)
        self.store = store
        self.cache_dir = cache_dir
        self.progress = progress or (lambda msg: None)
        self.units_bar = units  # start(index, total, label) / done(): a progress bar, if any
        self.executor = executor  # None: units run in this process
        self.opened = {d.name: d for d in self.datasets} if datasets is not None else None
        self.failed_units: list[str] = []

    def tasks(self, run_id: str, done: set[str]) -> list[UnitTask]:
        specs: dict[tuple[str, str], Any] = {}
        out = []
        for d, t, v in self.units():
            key = self.unit_key(d, t, v)
            if key in done:
                continue
            spec = specs.get((v.name, v.config_hash))
            if spec is None:
                spec = specs[(v.name, v.config_hash)] = self.registry.spec(v.name, v.params)
            out.append(UnitTask(run_id, key, d.name, t.subset, t.name, spec, v.config_hash,
                                v.strategy_spec))
        return out

    def run(self, command: str = "") -> RunSummary:
        t0 = time.perf_counter()
        run_id = self.run_id()
        crashed = self.store.mark_stale_runs()
        if run_id in crashed:
            self.progress(f"run {run_id} was left unfinished by a process that ended; resuming it")
        executor = self.executor or LocalExecutor(self.config, self.cache_dir, self.opened,
                                                    self.progress)
        if hasattr(executor, "bind"):
            executor.bind(self.config, self.cache_dir)
        total = len(self.units())
        resumed = self.store.begin_run(run_id, self.run_config(), versions(),
                                       {**machine(), **executor.machine()}, command, total)
        done = self.store.done_units(run_id)
        if resumed:
            self.progress(f"resuming run {run_id}: {len(done)} of {total} units already done")
        count = {"ran": 0, "seen": 0}
        succeeded: list[str] = []

        def on_start(task: UnitTask) -> None:
            index = min(total, len(done) + count["seen"] + 1)
            if self.units_bar is not None:
                self.units_bar.start(index, total, task.label)
            else:
                self.progress(f"[{index}/{total}] {task.label}")

        def advance(task: UnitTask, started: bool) -> None:
            if not started:  # executors that cannot tell when a unit starts (Dask)
                on_start(task)
            count["seen"] += 1
            if self.units_bar is not None:
                self.units_bar.done()

        def on_result(task: UnitTask, rows: list, record: dict) -> None:
            record = UnitRecord(**record)
            self.notices.extend(n for n in record.notices if n not in self.notices)
            if self.store.write_unit(run_id, record, rows):
                count["ran"] += 1
                succeeded.append(task.unit_key)
            else:
                self.progress(f"  {task.unit_key}: already written by another process on this "
                              "run; kept that one")
            advance(task, started=self.executor is None)

        def on_error(task: UnitTask, exc: BaseException) -> None:
            self.failed_units.append(task.unit_key)
            self.notices.append(f"unit {task.unit_key} failed: {type(exc).__name__}: {exc} "
                                "(run the same command again to retry it)")
            advance(task, started=self.executor is None)

        status = "interrupted"
        try:
            executor.run(self.tasks(run_id, done), on_result, on_error,
                         on_start if self.executor is None else None)
            status = "failed" if self.failed_units else "complete"
        except KeyboardInterrupt:
            raise
        except BaseException:
            status = "interrupted" if interrupted() else "failed"
            raise
        finally:
            self.store.finish_run(run_id, status, self.notices, succeeded=succeeded)
        return RunSummary(run_id, self.store.path, resumed, total, len(done), count["ran"],
                          self.notices, time.perf_counter() - t0, list(self.failed_units))
