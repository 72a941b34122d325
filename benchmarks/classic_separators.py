"""The classic separators against mix and the oracles, with and without the Wiener post-filter,
on the embedded data; and each separator's run time per second of audio.

1. Runs (or resumes) ``demixbench run --wiener`` for mix, hpss_repet, hpss_nmf,
   nmf_supervised, irm2 and mwf on ``synthetic:N`` and ``demo`` into ``--store``.
2. Prints, per dataset, median cSDR and mean uSDR per target for each separator, plain and
   ``+wiener`` side by side.
3. Times ``separate()`` on a ``--seconds`` synthetic stereo excerpt (after one warm-up call, so
   imports and JIT compilation are not counted; median of ``--repeats``) and prints seconds of
   compute per second of audio.

    python benchmarks/classic_separators.py [--tracks 8] [--seconds 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEPARATORS = ["mix", "hpss_repet", "hpss_nmf", "nmf_supervised", "irm2", "mwf"]
TARGETS = ["drums", "bass", "other", "vocals", "accompaniment"]


def run_benchmark(store_path: Path, tracks: int, separators: list[str]) -> list[dict]:
    from demixbench.runs.runner import RunConfig, Runner
    from demixbench.runs.store import ResultsStore

    cfg = RunConfig(datasets=[f"synthetic:{tracks}", "demo"], separators=separators,
                    metrics=["sdr", "usdr"], strategies=["none", "wiener"])
    with ResultsStore(store_path) as store:
        runner = Runner(cfg, store, cache_dir=store_path.parent / "estimates",
                        progress=lambda m: print(m, file=sys.stderr))
        summary = runner.run(command="benchmarks/classic_separators.py")
        print(f"run {summary.run_id}: {summary.units_run} units computed, "
              f"{summary.units_done_before} already done",
              file=sys.stderr)
        return [r for r in store.rows() if r["run_id"] == summary.run_id]


def tables(rows: list[dict], separators: list[str]) -> None:
    values: dict = defaultdict(list)
    for r in rows:
        if r["value"] is None or not np.isfinite(r["value"]):
            continue
        dataset = r["dataset"].split(":")[0]
        values[(dataset, r["separator"], r["strategy"], r["target"], r["metric"])].append(r["value"])
    for dataset in ("synthetic", "demo"):
        n = len({r["track"] for r in rows if r["dataset"].startswith(dataset)})
        print(f"\n== {dataset} ({n} tracks): median cSDR / mean uSDR in dB; plain | +wiener ==")
        print(f"{'separator':<16}" + "".join(f"{t:>26}" for t in TARGETS))
        for sep in separators:
            cells = []
            for t in TARGETS:
                parts = []
                for strategy in ("none", "wiener"):
                    c = values.get((dataset, sep, strategy, t, "sdr"), [])
                    u = values.get((dataset, sep, strategy, t, "usdr"), [])
                    parts.append(f"{np.median(c):5.1f}/{np.mean(u):5.1f}" if c and u else "  n/a/  n/a")
                cells.append(" | ".join(parts))
            print(f"{sep:<16}" + "".join(f"{c:>26}" for c in cells))


def timings(separators: list[str], seconds: float, repeats: int) -> None:
    from demixbench.datasets.synthetic import synthesize_track
    from demixbench.separators import default_registry
    from demixbench.separators.wiener import wiener_postfilter

    stems = synthesize_track(seed=5, seconds=seconds)
    mix = np.sum(list(stems.values()), axis=0).astype(np.float32)
    reg = default_registry()
    print(f"\n== run time on a {seconds:g} s stereo 44.1 kHz excerpt (median of {repeats}, after a "
          "warm-up call) ==")
    print(f"{'separator':<16}{'seconds':>9}{'s per s of audio':>18}{'+wiener s/s':>13}")
    for name in separators:
        sep = reg.create(name)

        def call(sep=sep):
            return sep.separate(mix, 44100, references=stems) if sep.oracle else sep.separate(mix, 44100)

        est = call()
        times, wtimes = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            wiener_postfilter(mix, est)
            wtimes.append(time.perf_counter() - t0)
        med, wmed = statistics.median(times), statistics.median(wtimes)
        print(f"{name:<16}{med:>9.2f}{med / seconds:>18.3f}{(med + wmed) / seconds:>13.3f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tracks", type=int, default=8, help="synthetic test tracks (8 s each)")
    p.add_argument("--seconds", type=float, default=30.0, help="excerpt length for the timings")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--store", default=".demixbench/classic.sqlite")
    p.add_argument("--no-timings", action="store_true")
    args = p.parse_args()
    rows = run_benchmark(Path(args.store), args.tracks, SEPARATORS)
    tables(rows, SEPARATORS)
    if not args.no_timings:
        timings(SEPARATORS, args.seconds, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
