"""Throughput of the Dask executor against the local one, and its per-unit overhead.

    python benchmarks/dask_throughput.py [--tracks 8] [--separators hpss_repet,hpss_nmf]
                                         [--workers 2] [--trivial-tracks 16]

1. A CPU-bound matrix (the separators on ``synthetic:N``, 8 s tracks, every metric) run with
   ``--executor local`` and ``--executor dask --workers W`` into two temporary stores, no
   estimate cache: wall time of each, their ratio, and whether every row is equal. The songs
   are rendered (and kept on disk) before anything is timed.
2. The per-unit scheduling overhead: ``mix`` (no computation) with ``--metrics usdr`` on
   ``synthetic:M``, Dask minus local wall time divided by the units. Cluster start-up is timed
   apart (it is paid once per run).
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from demixbench.datasets import open_dataset
from demixbench.runs.executors import DaskExecutor
from demixbench.runs.runner import RunConfig, Runner
from demixbench.runs.store import ResultsStore


def timed_run(config: RunConfig, store: Path, executor=None) -> float:
    with ResultsStore(store) as s:
        t0 = time.perf_counter()
        Runner(config, s, cache_dir=None, executor=executor).run()
        return time.perf_counter() - t0


def rows(store: Path) -> dict:
    db = sqlite3.connect(store)
    out = {r[:5]: r[5] for r in db.execute(
        "SELECT track, separator, step, target, metric, value FROM results")}
    db.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, default=8)
    ap.add_argument("--separators", default="hpss_repet,hpss_nmf")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--trivial-tracks", type=int, default=16)
    args = ap.parse_args()
    heavy = RunConfig(datasets=[f"synthetic:{args.tracks}"], separators=args.separators.split(","),
                      excerpt=0)
    trivial = RunConfig(datasets=[f"synthetic:{args.trivial_tracks}"], separators=["mix"],
                        excerpt=0, metrics=["usdr"])
    # render the synthetic songs once (they are kept on disk): neither executor pays for it
    for spec in (*heavy.datasets, *trivial.datasets):
        for track in open_dataset(spec).tracks:
            track.load()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        local = timed_run(heavy, tmp / "local.sqlite")
        t0 = time.perf_counter()
        with DaskExecutor(workers=args.workers) as ex:
            startup = time.perf_counter() - t0
            dask = timed_run(heavy, tmp / "dask.sqlite", ex)
            trivial_dask = timed_run(trivial, tmp / "trivial-dask.sqlite", ex)
        trivial_local = timed_run(trivial, tmp / "trivial-local.sqlite")
        same = rows(tmp / "local.sqlite") == rows(tmp / "dask.sqlite")
        units = args.tracks * len(heavy.separators)
        print(f"matrix: {', '.join(heavy.separators)} on synthetic:{args.tracks} ({units} units)")
        print(f"  local {local:.1f} s, dask with {args.workers} workers {dask:.1f} s "
              f"(cluster start-up {startup:.1f} s apart): throughput x{local / dask:.2f}; "
              f"rows {'identical' if same else 'DIFFERENT'}")
        n = args.trivial_tracks
        print(f"overhead: mix + usdr on synthetic:{n}: local {trivial_local:.2f} s, dask "
              f"{trivial_dask:.2f} s, {(trivial_dask - trivial_local) / n * 1000:.0f} ms per unit")


if __name__ == "__main__":
    main()
