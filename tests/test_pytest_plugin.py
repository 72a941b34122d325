"""The pytest plugin, driven through pytest's own ``pytester`` in subprocesses: saving,
pairing with a saved session, the regression gate, refusals, xdist, and bad fixture input."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

TEST_FILE = '''
import os

import numpy as np
import pytest

from demixbench.separators import Separator


class ScaledMix(Separator):
    """The mixture times a factor as every estimate: a tiny, controllable change."""
    name = "scaled_mix"
    sources = ("vocals", "drums", "bass", "other")
    sample_rate = None

    def __init__(self, scale):
        self.scale = scale

    def params(self):
        return {"scale": self.scale}

    def _separate(self, mixture, sample_rate, references):
        return {s: mixture * np.float32(self.scale) for s in self.sources}


@pytest.mark.parametrize("name", ["irm1", "mix"])
def test_named(separation_benchmark, name):
    used = "mix" if os.environ.get("DEGRADE") and name == "irm1" else name
    result = separation_benchmark(used, dataset="synthetic:2", metrics=["sdr", "usdr"],
                                  excerpt=2, win=float(os.environ.get("WIN", "1.0")))
    assert result.aggregate("vocals", "usdr") == pytest.approx(
        np.mean(list(result.values("vocals", "usdr").values())))


def test_instance(separation_benchmark):
    scale = float(os.environ.get("SCALE", "1.0"))
    result = separation_benchmark(ScaledMix(scale), dataset="synthetic:2", metrics=["usdr"],
                                  excerpt=2)
    assert result.tracks == ["synthetic-test-000", "synthetic-test-001"]
'''


@pytest.fixture
def project(pytester, tmp_path_factory):
    pytester.makepyfile(test_bench=TEST_FILE)
    store = tmp_path_factory.getbasetemp() / "plugin-store" / "results.sqlite"

    def run(*args: str, **env: str):
        for k in ("DEGRADE", "WIN", "SCALE"):
            pytester._monkeypatch.delenv(k, raising=False)
        for k, v in env.items():
            pytester._monkeypatch.setenv(k, v)
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--demix-store={store}",
                                             *args)
    return pytester, run


def saved(pytester) -> list:
    return sorted((pytester.path / ".demixbench" / "benchmarks").rglob("*.json"))


def test_save_then_compare_pairs_and_an_unchanged_rerun_passes(project, tmp_path):
    pytester, run = project
    out, gh = tmp_path / "session.json", tmp_path / "gh.json"
    result = run("--demix-autosave", f"--demix-json={out}", f"--demix-export=github:{gh}")
    result.assert_outcomes(passed=3)
    (path,) = saved(pytester)
    doc = json.loads(path.read_text())
    assert {"machine_info", "commit_info", "versions", "datetime", "tests"} <= set(doc)
    assert set(doc["commit_info"]) == {"id", "dirty", "branch", "time"}
    test = next(t for t in doc["tests"] if t["nodeid"].endswith("test_named[irm1]"))
    assert {"separator_config", "separator_hash", "dataset_fingerprint", "metric_definitions",
            "values", "aggregates", "timing"} <= set(test)
    assert len(test["values"]) == 2 * 5 * 2  # tracks x targets x metrics
    assert all(v["value"] is not None for v in test["values"])
    assert test["metric_definitions"]["usdr"]["delta"] == 1e-7
    result.stdout.fnmatch_lines(["*demixbench separation benchmarks*",
                                 "*test_named?irm1?*vocals*"])
    assert json.loads(out.read_text())["tests"] == doc["tests"]
    entries = json.loads(gh.read_text())
    assert all(set(e) >= {"name", "unit", "value"} and e["unit"] == "dB" for e in entries)
    assert any("test_named[irm1] vocals uSDR" in e["name"] for e in entries)
    again = run("--demix-compare", "--demix-compare-fail=usdr:0.5")
    again.assert_outcomes(passed=3)
    assert again.ret == 0
    again.stdout.fnmatch_lines([f"compared with {path.relative_to(pytester.path)}*",
                                "*test_named?irm1?*vocals*uSDR*+0.00*"])


@pytest.mark.slow
def test_regression_fails_a_tiny_change_passes_another_window_is_refused(project):
    pytester, run = project
    run("--demix-autosave").assert_outcomes(passed=3)
    # one session: test_named[irm1] degraded (mix in its place), test_instance changed a little
    worse = run("--demix-compare", "--demix-compare-fail=usdr:0.5", DEGRADE="1", SCALE="0.98")
    assert worse.ret == 1
    worse.stdout.fnmatch_lines([
        "changed: *test_instance: scaled_mix params.scale: 1.0 -> 0.98",
        "changed: *test_named?irm1?: separator irm1 -> mix",
        "FAILED (--demix-compare-fail) *test_named?irm1?: vocals uSDR dropped by *dB (median of 2 "
        "paired tracks, 95% CI [[]*], Wilcoxon p=*, Holm p=*), more than the 0.5 dB allowed by "
        "usdr:0.5"])
    failed = [line for line in worse.stdout.lines if line.startswith("FAILED (--demix")]
    assert failed and not any("test_instance" in line for line in failed)  # below threshold
    # another BSS Eval window measures another quantity: refused, and a gate then fails
    other = run("--demix-compare=1", "--demix-compare-fail=sdr:1", WIN="0.5")
    assert other.ret == 1
    other.stdout.fnmatch_lines(["not compared: *test_named?irm1?: BSS Eval window 1.0 s before, "
                                "0.5 s now"])


def test_xdist_with_two_workers_saves_one_file(project):
    pytest.importorskip("xdist", reason="pytest-xdist is not installed")
    pytester, run = project
    result = run("-n", "2", "--demix-autosave")
    result.assert_outcomes(passed=3)
    (path,) = saved(pytester)
    assert len(json.loads(path.read_text())["tests"]) == 3


def test_bad_fixture_input_is_a_one_line_test_failure(pytester, tmp_path):
    pytester.makepyfile(test_bad='''
def test_unknown_separator(separation_benchmark):
    separation_benchmark("no_such_separator", dataset="synthetic:1", excerpt=2)

def test_unknown_metric(separation_benchmark):
    separation_benchmark("mix", dataset="synthetic:1", excerpt=2, metrics=["loudness"])

def test_called_twice(separation_benchmark):
    separation_benchmark("mix", dataset="synthetic:1", excerpt=2, metrics=["usdr"])
    separation_benchmark("mix", dataset="synthetic:1", excerpt=2, metrics=["usdr"])
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           f"--demix-store={tmp_path / 'r.sqlite'}")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*separation_benchmark: unknown separator 'no_such_separator'*",
                                 "*separation_benchmark: unknown metric(s) loudness; choose from*",
                                 "*separation_benchmark is called once per test*"])
    out = result.stdout.str()
    assert "demixbench/runs" not in out and "demixbench/separators" not in out
