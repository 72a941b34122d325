"""Gates that cannot pass by accident: one rule for `compare --fail-on` and the plugin's
`--demix-compare-fail`; a gate that cannot be evaluated (metric or target absent, one pair)
fails saying why; a failed gate makes pytest's final line say failed; no saved session only
warns."""

from __future__ import annotations

import pytest
from conftest import cli

pytest_plugins = ["pytester"]

ONE_TRACK = '''
import os

import numpy as np

from demixbench.separators import Separator


class Scaled(Separator):
    name = "scaled"
    sources = ("vocals", "accompaniment")
    sample_rate = None

    def params(self):
        return {"scale": float(os.environ.get("SCALE", "0.5"))}

    def _separate(self, mixture, sample_rate, references):
        s = np.float32(self.params()["scale"])
        return {"vocals": mixture * s, "accompaniment": mixture * (1 - s)}


def test_one_track(separation_benchmark):
    separation_benchmark(Scaled(), dataset="synthetic:1", metrics=["usdr"], excerpt=2)
'''



@pytest.fixture
def session(pytester, tmp_path):
    pytester.makepyfile(test_one=ONE_TRACK)
    store = tmp_path / "s.sqlite"

    def run(*args, scale="0.5"):
        pytester._monkeypatch.setenv("SCALE", scale)
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--demix-store={store}",
                                             *args)
    return run


def test_no_saved_session_warns_and_passes(session):
    result = session("--demix-compare", "--demix-compare-fail=usdr:0.5")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*demixbench: warning: no saved benchmark*nothing compared*",
                                 "*1 passed*"])


@pytest.mark.parametrize("gate, why", [
    ("sdr:0.5", "metric sdr is not in the comparison (compared: usdr)"),
    pytest.param("usdr:piano:0.5", "target piano of usdr is not in the comparison", marks=pytest.mark.slow),
    pytest.param("usdr:0.5", "at most 1 paired track(s) per row; a gate needs 2 or more",
                 marks=pytest.mark.slow),
])
def test_a_gate_that_cannot_be_evaluated_fails_and_pytest_says_so(session, gate, why):
    session("--demix-autosave").assert_outcomes(passed=1)
    result = session("--demix-compare", f"--demix-compare-fail={gate}", scale="0.1")
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"*--demix-compare-fail={gate} could not be evaluated: {why}*"])
    last = result.stdout.lines[-1]
    assert "1 failed" in last and "1 passed" in last, last  # the final line says failed


def test_compare_fail_on_an_absent_metric_fails(tmp_path):
    store = str(tmp_path / "s.sqlite")
    args = ["run", "--dataset", "synthetic:2", "--separators", "mix", "--excerpt", "2",
            "--metrics", "usdr", "--no-report", "--quiet", "--store", store]
    code, out_a, err = cli(*args)
    assert code == 0, err
    a = next(line.split()[1] for line in out_a.splitlines() if line.startswith("run "))
    code, _, err = cli("compare", a, a, "--store", store, "--metric", "usdr", "--fail-on",
                       "sdr:0.5")
    assert code == 1
    assert "FAIL: --fail-on sdr:0.5 could not be evaluated: metric sdr is not in the comparison" \
        in err
    code, _, err = cli("compare", a, a, "--store", store, "--metric", "usdr", "--fail-on",
                       "sdr:0.5", "--gate-unevaluated", "warn")
    assert code == 0 and "warning: --fail-on sdr:0.5 could not be evaluated" in err
