"""The classic separators against mix and the oracles, with and without the Wiener post-filter
(quality, through ``separation_benchmark``), and each one's time per second of audio (speed,
through pytest-benchmark). ``classic_separators.py`` prints the same tables as a script.

    pytest benchmarks/test_classic_separators.py [--bench-tracks 8] [--bench-seconds 30]
"""

from __future__ import annotations

import numpy as np
import pytest

from demixbench.datasets.synthetic import synthesize_track
from demixbench.separators import default_registry
from demixbench.separators.wiener import wiener_postfilter

SEPARATORS = ["mix", "hpss_repet", "hpss_nmf", "nmf_supervised", "irm2", "mwf"]
TARGETS = ["drums", "bass", "other", "vocals", "accompaniment"]


@pytest.mark.parametrize("strategy", ["none", "wiener"])
@pytest.mark.parametrize("dataset", ["synthetic", "demo"])
@pytest.mark.parametrize("separator", SEPARATORS)
def test_quality(separation_benchmark, tables, bench_tracks, separator, dataset, strategy):
    spec = f"synthetic:{bench_tracks}" if dataset == "synthetic" else "demo"
    r = separation_benchmark(separator, dataset=spec, metrics=["sdr", "usdr"], strategy=strategy)
    cells = [f"{r.aggregate(t, 'sdr'):5.1f}/{r.aggregate(t, 'usdr'):5.1f}" if t in r.targets
             else "  n/a/  n/a" for t in TARGETS]
    tables.add(f"classic separators: median cSDR / mean uSDR (dB); {' '.join(TARGETS)}",
               f"{separator + ('+wiener' if strategy == 'wiener' else ''):<22}{spec:<13}"
               + "".join(f"{c:>14}" for c in cells))
    if separator != "mix":  # every separator beats the mixture on the accompaniment it returns
        assert r.aggregate("accompaniment", "usdr") > 0


@pytest.fixture(scope="module")
def excerpt(bench_seconds):
    stems = synthesize_track(seed=5, seconds=bench_seconds)
    return stems, np.sum(list(stems.values()), axis=0).astype(np.float32)


@pytest.mark.parametrize("wiener", [False, True], ids=["plain", "wiener"])
@pytest.mark.parametrize("separator", SEPARATORS)
def test_speed(benchmark, excerpt, tables, bench_seconds, separator, wiener):
    stems, mix = excerpt
    sep = default_registry().create(separator)

    def call():
        est = sep.separate(mix, 44100, references=stems) if sep.oracle else sep.separate(mix, 44100)
        return wiener_postfilter(mix, est) if wiener else est

    call()  # warm-up: imports, FFT plans
    benchmark.pedantic(call, rounds=3, iterations=1)
    median = benchmark.stats.stats.median
    tables.add(f"classic separators: seconds of compute per second of audio ({bench_seconds:g} s "
               "excerpt, median of 3)",
               f"{separator + ('+wiener' if wiener else ''):<22}{median / bench_seconds:8.3f}")
