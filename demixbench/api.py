"""The Python API for notebooks, over the same code as the command line.

``demixbench.run(...)`` takes the options of ``demixbench run`` as keyword arguments and
returns a :class:`Results`; ``demixbench.open_results(store, run=...)`` opens stored runs. A
:class:`Results` gives

- ``.df``: the tidy rows as a pandas DataFrame, with museval's column names where they exist
  (``track``, ``target``, ``metric``, ``score``) beside demixbench's (``run``, ``dataset``,
  ``subset``, ``excerpt``, ``separator``, ``oracle``, ``strategy``, ``step``, ``nan_reason``);
- ``.leaderboard()``: one row per separator, strategy, step and target, as the terminal's;
- ``.compare(a, b, ...)``: two runs or two separators paired (``"RUN"`` or ``"RUN:NAME"``, a
  bare ``"NAME"`` meaning that separator in this result's run), a DataFrame of the table;
- ``.rank(metric=..., targets=...)``: Friedman, mean ranks, post-hoc p-values per target;
- ``.report(path)``: the HTML report, written and its path returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import DemixbenchError
from .paths import DEFAULT_STORE

MUSEVAL_NAMES = {"value": "score", "run_id": "run"}


class Results:
    """Runs in a store (see the module doc)."""

    def __init__(self, store: str | Path, run_ids: Sequence[str]):
        self.store = Path(store)
        self.run_ids = list(run_ids)
        self._df: pd.DataFrame | None = None

    def __repr__(self) -> str:
        return f"Results(store={str(self.store)!r}, runs={self.run_ids})"

    @property
    def df(self) -> pd.DataFrame:
        if self._df is None:
            from .runs.store import ResultsStore

            with ResultsStore(self.store, read_only=True) as s:
                rows = [r for run in self.run_ids for r in s.rows(run)]
            cols = ["run_id", "dataset", "subset", "track", "excerpt", "separator", "oracle",
                    "strategy", "step", "target", "metric", "value", "nan_reason"]
            frame = pd.DataFrame(rows, columns=cols)
            frame["oracle"] = frame["oracle"].astype(bool)
            self._df = frame.rename(columns=MUSEVAL_NAMES)
        return self._df

    def leaderboard(self) -> pd.DataFrame:
        from .reports.leaderboard import leaderboard
        from .runs.rows import planned_tracks
        from .runs.store import ResultsStore

        with ResultsStore(self.store, read_only=True) as s:
            rows = [r for run in self.run_ids for r in s.rows(run)]
            configs = s.configs(self.run_ids)
            planned = planned_tracks([s.run_record(r) for r in self.run_ids])
        entries = leaderboard(rows, configs, planned=planned)
        drop = [k for k in ("separator_hash", "strategy_hash", "multi_step") if entries
                and k in entries[0]]
        return pd.DataFrame(entries).drop(columns=drop)

    def _side(self, side: str) -> str:
        known = set(self.run_ids)
        run, _, name = side.partition(":")
        if run in known or not name and side in known:
            return side
        if len(self.run_ids) == 1:  # a bare separator name: that separator of this run
            return f"{self.run_ids[0]}:{side}"
        raise DemixbenchError(f"{side!r}: give RUN or RUN:SEPARATOR (runs: "
                              f"{', '.join(self.run_ids)})")

    def compare(self, a: str, b: str, metrics: Sequence[str] | None = None,
                strategy: str | None = None, step: int | None = None) -> pd.DataFrame:
        from .reports.compare import compare

        c = compare(self.store, self._side(a), None, self._side(b), metrics, strategy, step)
        return pd.DataFrame(c.table)

    def rank(self, metric: str = "sdr", targets: Sequence[str] | None = None,
             posthoc: str = "conover") -> pd.DataFrame:
        from .reports.ranking import rank

        rankings = rank(str(self.store), self.run_ids, metric, targets, posthoc)
        return pd.DataFrame([{"target": r.target, "metric": r.metric, "n": r.n,
                              "friedman_stat": r.friedman_stat, "friedman_p": r.friedman_p,
                              "rank": i + 1, "separator": s, "mean_rank": r.mean_ranks[s],
                              "median": r.medians[s]}
                             for r in rankings for i, s in enumerate(r.separators)])

    def report(self, path: str | Path | None = None, title: str | None = None) -> Path:
        from .reports.report import write_report

        return write_report(self.store, path, self.run_ids, title)


def open_results(store: str | Path = DEFAULT_STORE, run: str | Sequence[str] | None = None
                 ) -> Results:
    """Stored runs (default: the latest run of ``store``)."""
    from .runs.store import ResultsStore

    if not Path(store).is_file():
        raise DemixbenchError(f"no results store at {store}; make one with demixbench.run()")
    with ResultsStore(store, read_only=True) as s:
        ids = [run] if isinstance(run, str) else list(run or [])
        if not ids:
            latest = s.latest_run()
            if latest is None:
                raise DemixbenchError(f"{store} holds no run yet")
            ids = [latest]
        known = {r["run_id"] for r in s.runs()}
        unknown = [r for r in ids if r not in known]
        if unknown:
            raise DemixbenchError(f"no run {', '.join(unknown)} in {store}")
    return Results(store, ids)


def run(datasets: Sequence[str] | str = ("synthetic", "demo"),
        separators: Sequence[str] | str | None = None, metrics: Sequence[str] | None = None,
        excerpt: float = 30.0, excerpts_per_track: int = 1, gains: dict | None = None,
        strategies: Sequence[str] | str | None = None, params: dict | None = None,
        weights: str | None = None, bsseval: str = "numpy", store: str | Path = DEFAULT_STORE,
        cache: bool = True, cache_dir: str | Path | None = None, keep_estimates: bool = False,
        executor: str = "local", workers: int | None = None, threads_per_worker: int = 1,
        new_run: bool = False, allow_test_trained: bool = False, progress: bool = False,
        ) -> Results:
    """Run a benchmark as ``demixbench run`` does (same runner, store, cache and identity: a
    rerun resumes); the keyword arguments are its options. ``params`` maps a separator to its
    constructor parameters (typed values, or text as on the command line)."""
    import contextlib

    from .paths import estimate_cache_dir
    from .runs.config import DEFAULT_METRICS, RunConfig
    from .runs.executors import DaskExecutor
    from .runs.runner import Runner
    from .runs.store import ResultsStore
    from .specs import check_workers, parse_executor

    def listed(v: Any) -> list[str] | None:
        return None if v is None else [v] if isinstance(v, str) else list(v)

    config = RunConfig(datasets=listed(datasets), separators=listed(separators),
                       metrics=listed(metrics) or list(DEFAULT_METRICS), excerpt=float(excerpt),
                       excerpts_per_track=int(excerpts_per_track), gains=dict(gains or {}),
                       strategies=listed(strategies) or [], params=dict(params or {}),
                       weights=weights, allow_test_trained=allow_test_trained, bsseval=bsseval,
                       cache_min_seconds=0.0 if keep_estimates else 0.5, new_run=new_run)
    kind, address = parse_executor(executor)
    ex = (DaskExecutor(address, check_workers(workers), threads_per_worker) if kind == "dask"
          else None)
    say = print if progress else None
    with ResultsStore(store) as s, (ex or contextlib.nullcontext()):
        runner = Runner(config, s, cache_dir=None if not cache else Path(cache_dir or
                                                                         estimate_cache_dir()),
                        progress=say, executor=ex)
        summary = runner.run(command="python: demixbench.run(...)")
    return Results(store, [summary.run_id])
