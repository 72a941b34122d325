"""Where a run's units are computed: in this process (``local``), or on Dask workers
(``dask`` starts a ``LocalCluster`` on this machine, ``dask:ADDRESS`` joins a scheduler the
user runs, e.g. ``dask scheduler`` / ``dask worker`` or dask-jobqueue on SLURM).

Dask (``pip install "demixbench[dask]"``) is the scheduler, not something written here: it
places tasks, restarts a killed worker and reruns its task elsewhere, and streams results back.
What demixbench adds:

- one interface for every executor: ``run(tasks, on_result, on_error, on_start)``. A unit is
  a small :class:`UnitTask` (dataset spec, track, a
  :class:`~demixbench.separators.SeparatorSpec` — registry name with its label, parameters —
  and the strategy spec): never audio. :class:`LocalExecutor` computes tasks in this process,
  :class:`DaskExecutor` on workers; both compute them with a :class:`UnitWorker`, which builds
  separators from the spec as the registry does, so labels (``unet@early``) and plugins work
  the same everywhere. Workers load the excerpt, separate, score
  and return rows; the client is the only writer of the SQLite store (one transaction per unit,
  as a local run), so resuming works across executors;
- a separator that asks for worker resources (:meth:`Separator.worker_resources`, e.g. a model
  run with ``device=cuda`` asks for ``GPU=1``) is only given to workers that offer them
  (``dask worker ADDRESS --resources GPU=1``; a local cluster on a machine with CUDA offers
  ``GPU=1`` on each worker); a run asking for a resource no worker has stops before submitting;
- a worker builds each separator once and reuses it for the units that follow (a run submits
  units separator by separator);
- threads: Dask's nanny sets ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` to 1 in workers and leaves
  that in the client's environment; each worker runs one unit at a time with BLAS and torch
  set to ``threads_per_worker`` threads, the client's environment is restored, and the counts
  are recorded in the run's machine information;
- a unit that raises is recorded in the run's notices with its message and the others go on (a
  rerun computes only what is missing); Ctrl-C closes the cluster and leaves the run resumable.
"""

from __future__ import annotations

import gc
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from ..datasets import Dataset
from ..errors import DemixbenchError
from ..separators import SeparatorSpec
from .compute import UnitComputer
from .config import RunConfig, open_run_dataset

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
MODELS_PER_WORKER = 2  # separators kept built in a worker (the run submits them in order)


@dataclass(frozen=True)
class UnitTask:
    """One unit, as sent to where it is computed."""

    run_id: str
    unit_key: str
    dataset: str
    subset: str
    track: str
    separator: SeparatorSpec
    separator_hash: str
    strategy: str | None

    @property
    def label(self) -> str:
        return (f"{self.separator.name}" + (f" {self.strategy.partition(':')[0]}"
                                             if self.strategy else "")
                + f" on {self.dataset}/{self.track}")


OnResult = Callable[[UnitTask, list, dict], None]
OnError = Callable[[UnitTask, BaseException], None]
OnStart = Callable[[UnitTask], None]


class Executor(Protocol):
    """Where a run's units are computed. ``run`` calls ``on_result(task, rows, record)`` (or
    ``on_error(task, exc)``) in this process as each unit completes; ``on_start(task)`` before
    a unit starts where the executor can tell (locally)."""

    def machine(self) -> dict: ...

    def run(self, tasks: list[UnitTask], on_result: OnResult, on_error: OnError,
            on_start: OnStart | None = None) -> None: ...


class UnitWorker:
    """Computes tasks of one run: opens datasets, builds separators from their specs (keeping
    the last ``models`` built), loads excerpts, separates and scores."""

    def __init__(self, config: RunConfig, cache_dir: str | Path | None,
                 datasets: dict[str, Dataset] | None = None, models: int = MODELS_PER_WORKER,
                 progress: Callable[[str], None] | None = None):
        self.config = config
        self.computer = UnitComputer(config, cache_dir, progress)
        self.datasets: dict[str, Dataset] = dict(datasets or {})
        self.models = models
        self.separators: OrderedDict[str, Any] = OrderedDict()

    def separator(self, spec: SeparatorSpec):
        key = spec.key()
        if key in self.separators:
            self.separators.move_to_end(key)
            return self.separators[key]
        while self.separators and len(self.separators) >= self.models:
            self.separators.popitem(last=False)
            gc.collect()  # release the model before the next one is built
        self.separators[key] = spec.build()
        return self.separators[key]

    def prepare(self, task: UnitTask) -> tuple:
        """Open the dataset, build the separator and strategy, load the excerpt: what can fail
        before any computation."""
        from ..strategies import build_strategy

        if task.dataset not in self.datasets:
            self.datasets[task.dataset] = open_run_dataset(task.dataset, self.config)
        dataset = self.datasets[task.dataset]
        track = next((t for t in dataset.tracks if t.name == task.track
                      and t.subset == task.subset), None)
        if track is None:
            raise DemixbenchError(f"{task.dataset}: no track {task.subset}/{task.track} here; "
                                  "every worker must see the same data as the client")
        sep = self.separator(task.separator)
        if sep.config_hash() != task.separator_hash:
            raise DemixbenchError(f"{sep.name}: configuration {sep.config_hash()} here, "
                                  f"{task.separator_hash} when the run was planned (other code, "
                                  "library versions or weights files?); install the same "
                                  "everywhere, or run the command again")
        strategy = build_strategy(task.strategy, sep) if task.strategy else None
        return dataset, track, sep, strategy, self.computer.excerpt(dataset, track)

    def compute(self, task: UnitTask, prepared: tuple | None = None) -> tuple[list[dict], dict]:
        dataset, track, sep, strategy, loaded = prepared or self.prepare(task)
        rows, record = self.computer.compute_unit(task.run_id, task.unit_key, dataset, track, sep,
                                                  strategy, *loaded)
        return rows, asdict(record)


class LocalExecutor:
    """Computes units in this process, in the order given, one model in memory at a time; a
    unit that raises stops the run (the finished units are stored: rerun to resume)."""

    def __init__(self, config: RunConfig, cache_dir: str | Path | None,
                 datasets: dict[str, Dataset] | None = None,
                 progress: Callable[[str], None] | None = None):
        self.worker = UnitWorker(config, cache_dir, datasets, models=1, progress=progress)

    def machine(self) -> dict:
        return {"executor": "local"}

    def run(self, tasks: list[UnitTask], on_result: OnResult, on_error: OnError,
            on_start: OnStart | None = None) -> None:
        for task in tasks:
            prepared = self.worker.prepare(task)
            if on_start is not None:
                on_start(task)
            rows, record = self.worker.compute(task, prepared)
            del prepared
            on_result(task, rows, record)
        self.worker.separators.clear()
        gc.collect()


_WORKER: dict[str, Any] = {"run": None, "worker": None, "threads": None}


def _set_threads(n: int) -> None:
    if _WORKER["threads"] == n:
        return
    for var in THREAD_VARS:
        os.environ[var] = str(n)
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    _WORKER["threads"] = n


def compute_task(task: UnitTask, config: dict, cache_dir: str | None,
                 threads: int) -> tuple[list[dict], dict]:
    """Run on a Dask worker: the unit's rows and record (a dict). One run at a time per worker
    process; the worker's :class:`UnitWorker` is kept across that run's units."""
    _set_threads(threads)
    if _WORKER["run"] != task.run_id:
        _WORKER["run"] = task.run_id
        _WORKER["worker"] = UnitWorker(RunConfig(**config), cache_dir)
    return _WORKER["worker"].compute(task)


async def _worker_setup() -> None:
    """Run on each worker's event loop, i.e. its process's main thread (a coroutine function
    is, with ``Client.run``), where a signal handler may be set: ignore Ctrl-C (the client
    closes the cluster), and do not log the units cancelled when it does."""
    import logging
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("distributed.worker.state_machine").setLevel(logging.ERROR)


def _local_resources() -> dict[str, float] | None:
    """``GPU=1`` on each local worker when this machine has CUDA (a torch installed)."""
    try:
        import torch
    except ImportError:
        return None
    return {"GPU": 1} if torch.cuda.is_available() else None


class DaskExecutor:
    """Computes units on Dask workers; the caller writes what comes back."""

    def __init__(self, address: str | None = None, workers: int | None = None,
                 threads_per_worker: int = 1, connect_timeout: float = 10.0):
        self.run_config: dict = {}
        self.cache_dir: str | None = None
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise DemixbenchError('--executor dask needs dask.distributed: pip install '
                                  '"demixbench[dask]"') from None
        if threads_per_worker < 1:
            raise DemixbenchError(f"--threads-per-worker {threads_per_worker}: give 1 or more")
        self.address = address
        self.threads = int(threads_per_worker)
        if workers is not None and workers < 1:
            raise DemixbenchError(f"--workers {workers}: give 1 or more (or leave it out: one "
                                  "worker per core)")
        self.workers = workers or max(1, (os.cpu_count() or 1) // self.threads)
        self.connect_timeout = connect_timeout
        self.client = None
        self.cluster = None

    def machine(self) -> dict:
        info = {"executor": f"dask:{self.address}" if self.address else "dask",
                "threads_per_worker": self.threads}
        if self.client is not None:
            info["workers"] = len(self.client.scheduler_info().get("workers", {}))
        return info

    def __enter__(self) -> DaskExecutor:
        from distributed import Client, LocalCluster

        saved = {v: os.environ.get(v) for v in THREAD_VARS}
        try:
            if self.address:
                try:
                    self.client = Client(self.address, timeout=f"{self.connect_timeout}s")
                except OSError as exc:
                    raise DemixbenchError(f"--executor dask:{self.address}: no scheduler answers "
                                          f"there ({exc}); start one (dask scheduler) or check "
                                          "the address") from None
            else:
                self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                            processes=True, dashboard_address=None,
                                            resources=_local_resources())
                self.client = Client(self.cluster)
                # Ctrl-C in a terminal reaches every process of the foreground group: only this
                # process handles it (closing the cluster); workers and nannies ignore it, so
                # an interrupt prints one line, not a traceback per worker
                self.client.run(_worker_setup)
        finally:  # the nanny's thread settings leak into this process: put ours back
            for var, value in saved.items():
                if value is None:
                    os.environ.pop(var, None)
                else:
                    os.environ[var] = value
        return self

    def __exit__(self, *exc) -> None:
        import logging

        quiet = exc and exc[0] is not None  # closing on an interrupt or error: no Dask chatter
        level = logging.getLogger("distributed").level
        if quiet:
            logging.getLogger("distributed").setLevel(logging.CRITICAL)
        try:
            if self.client is not None:
                self.client.close()
            if self.cluster is not None:
                self.cluster.close()
        finally:
            self.client = self.cluster = None
            logging.getLogger("distributed").setLevel(level)

    def check_resources(self, tasks: list[UnitTask]) -> None:
        """Refuse, before anything is submitted, units that ask for a resource no worker has
        (Dask would hold them forever)."""
        offered: dict[str, float] = {}
        for worker in self.client.scheduler_info().get("workers", {}).values():
            for name, amount in (worker.get("resources") or {}).items():
                offered[name] = max(offered.get(name, 0), amount)
        for task in tasks:
            for name, amount in task.separator.resources:
                if offered.get(name, 0) < amount:
                    sep = task.separator
                    raise DemixbenchError(
                        f"{sep.name} asks for a worker with {name}={amount:g} and no worker of "
                        f"the cluster offers it (offered: {offered or 'nothing'}); start such "
                        f"workers (dask worker ADDRESS --resources {name}={amount:g}) or run it "
                        f"without (e.g. --param {sep.name}.device=cpu)")

    def bind(self, config: RunConfig, cache_dir: str | Path | None) -> None:
        """The run whose tasks follow (what every worker needs beside each task)."""
        self.run_config = asdict(config)
        self.cache_dir = str(cache_dir) if cache_dir is not None else None

    def run(self, tasks: list[UnitTask], on_result: OnResult, on_error: OnError,
            on_start: OnStart | None = None) -> None:
        """Submit every task; call ``on_result(task, rows, record)`` or ``on_error(task, exc)``
        as each completes (in this process, in completion order)."""
        from distributed import as_completed

        self.check_resources(tasks)
        futures = {}
        for task in tasks:
            f = self.client.submit(compute_task, task, self.run_config, self.cache_dir,
                                   self.threads, key=f"unit-{task.run_id}-{hash(task.unit_key)}",
                                   pure=False, resources=dict(task.separator.resources) or None)
            futures[f] = task
        try:
            for f in as_completed(futures):
                task = futures[f]
                if f.status == "error":
                    on_error(task, f.exception())
                else:
                    rows, record = f.result()
                    on_result(task, rows, record)
        except BaseException as exc:
            # a scheduler of the user's keeps running: take our units off it. A cluster of our
            # own is closed on the way out (cancelling first would only make workers log it)
            if self.cluster is None or not isinstance(exc, KeyboardInterrupt):
                for f in futures:
                    f.cancel()
            raise
