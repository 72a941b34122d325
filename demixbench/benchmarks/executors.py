"""Where a run's units are computed: in this process (``local``), or on Dask workers
(``dask`` starts a ``LocalCluster`` on this machine, ``dask:ADDRESS`` joins a scheduler the
user runs, e.g. ``dask scheduler`` / ``dask worker`` or dask-jobqueue on SLURM).

Dask (``pip install "demixbench[dask]"``) is the scheduler, not something written here: it
places tasks, restarts a killed worker and reruns its task elsewhere, and streams results back.
What demixbench adds:

- a unit is sent as a small :class:`UnitTask` (dataset spec, track, separator class and
  parameters, strategy spec, metrics): never audio. Workers load the excerpt, separate, score
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

import json
import os
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import DemixbenchError

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
MODELS_PER_WORKER = 2  # separators kept built in a worker (the run submits them in order)


@dataclass(frozen=True)
class UnitTask:
    """One unit, as sent to a worker."""

    run_id: str
    unit_key: str
    config: dict  # RunConfig fields
    cache_dir: str | None
    dataset: str
    subset: str
    track: str
    separator: Any  # (class, params) to build, or a ready-made instance (tests, plugins' objects)
    separator_hash: str
    strategy: str | None
    threads: int
    resources: tuple[tuple[str, float], ...] = ()  # worker resources the unit needs (GPU=1)


_WORKER: dict[str, Any] = {"computers": {}, "datasets": {}, "separators": OrderedDict(),
                           "threads": None}


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


def _separator(spec: Any):
    if not isinstance(spec, tuple):
        return spec  # a ready-made instance, shipped as is
    cls, params = spec
    key = (cls, json.dumps(params, sort_keys=True, default=str))
    cache: OrderedDict = _WORKER["separators"]
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    while len(cache) >= MODELS_PER_WORKER:
        cache.popitem(last=False)
    cache[key] = cls(**params)
    return cache[key]


def compute_task(task: UnitTask) -> tuple[list[dict], dict]:
    """Run on a worker: the unit's rows and record (as a dict)."""
    from ..strategies import build_strategy
    from .runner import RunConfig, UnitComputer, open_run_dataset

    _set_threads(task.threads)
    computers = _WORKER["computers"]
    if task.run_id not in computers:
        computers.clear()  # one run at a time per worker process
        computers[task.run_id] = UnitComputer(RunConfig(**task.config), task.cache_dir)
    computer = computers[task.run_id]
    datasets = _WORKER["datasets"]
    config = RunConfig(**task.config)
    key = (task.dataset, config.excerpts_per_track, config.excerpt)
    if key not in datasets:
        datasets[key] = open_run_dataset(task.dataset, config)
    dataset = datasets[key]
    track = next((t for t in dataset.tracks if t.name == task.track and t.subset == task.subset),
                 None)
    if track is None:
        raise DemixbenchError(f"{task.dataset}: no track {task.subset}/{task.track} on this "
                              "worker; workers must see the same data as the client")
    sep = _separator(task.separator)
    if sep.config_hash() != task.separator_hash:
        raise DemixbenchError(f"{sep.name}: configuration {sep.config_hash()} on this worker, "
                              f"{task.separator_hash} on the client (other versions or weights "
                              "files?); install the same on every worker")
    strategy = build_strategy(task.strategy, sep) if task.strategy else None
    loaded = computer._excerpt(dataset, track)
    rows, record = computer.compute_unit(task.run_id, task.unit_key, dataset, track, sep,
                                         strategy, *loaded)
    return rows, asdict(record)


def parse_executor(text: str | None) -> tuple[str, str | None]:
    """``local`` | ``dask`` | ``dask:ADDRESS`` -> (kind, address)."""
    text = (text or "local").strip()
    kind, _, address = text.partition(":")
    if kind not in ("local", "dask") or (kind == "local" and address):
        raise DemixbenchError(f"--executor {text}: use local, dask (a cluster on this machine) or "
                              "dask:tcp://HOST:PORT (an existing scheduler)")
    return kind, address or None


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
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise DemixbenchError('--executor dask needs dask.distributed: pip install '
                                  '"demixbench[dask]"') from None
        if threads_per_worker < 1:
            raise DemixbenchError(f"--threads-per-worker {threads_per_worker}: give 1 or more")
        self.address = address
        self.threads = int(threads_per_worker)
        self.workers = workers or max(1, (os.cpu_count() or 1) // self.threads)
        if self.workers < 1:
            raise DemixbenchError(f"--workers {workers}: give 1 or more")
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
        finally:  # the nanny's thread settings leak into this process: put ours back
            for var, value in saved.items():
                if value is None:
                    os.environ.pop(var, None)
                else:
                    os.environ[var] = value
        return self

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None

    def check_resources(self, tasks: list[UnitTask]) -> None:
        """Refuse, before anything is submitted, units that ask for a resource no worker has
        (Dask would hold them forever)."""
        offered: dict[str, float] = {}
        for worker in self.client.scheduler_info().get("workers", {}).values():
            for name, amount in (worker.get("resources") or {}).items():
                offered[name] = max(offered.get(name, 0), amount)
        for task in tasks:
            for name, amount in task.resources:
                if offered.get(name, 0) < amount:
                    sep = task.separator[0] if isinstance(task.separator, tuple) else task.separator
                    raise DemixbenchError(
                        f"{sep.name} asks for a worker with {name}={amount:g} and no worker of "
                        f"the cluster offers it (offered: {offered or 'nothing'}); start such "
                        f"workers (dask worker ADDRESS --resources {name}={amount:g}) or run it "
                        f"without (e.g. --param {sep.name}.device=cpu)")

    def run(self, tasks: list[UnitTask], on_result, on_error) -> None:
        """Submit every task; call ``on_result(task, rows, record)`` or ``on_error(task, exc)``
        as each completes (in this process, in completion order)."""
        from distributed import as_completed

        self.check_resources(tasks)
        futures = {}
        for task in tasks:
            f = self.client.submit(compute_task, task, key=f"unit-{task.run_id}-{hash(task.unit_key)}",
                                   pure=False, resources=dict(task.resources) or None)
            futures[f] = task
        try:
            for f in as_completed(futures):
                task = futures[f]
                if f.status == "error":
                    on_error(task, f.exception())
                else:
                    rows, record = f.result()
                    on_result(task, rows, record)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
