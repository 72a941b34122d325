"""A run killed with SIGKILL half-way resumes to the same rows: none missing, none duplicated."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time

import pytest

ARGS = ["run", "--dataset", "synthetic:4", "--excerpt", "4", "--separators", "mix,irm1,irm2",
        "--metrics", "si_sdr,usdr", "--no-cache", "--no-report"]
UNITS = 12
KEY = "dataset, track, excerpt, separator_hash, strategy_hash, step, target, metric"


def _count(store) -> int:
    try:
        with sqlite3.connect(store) as db:
            return db.execute("SELECT COUNT(*) FROM units").fetchone()[0]
    except sqlite3.Error:
        return 0


def _rows(store):
    with sqlite3.connect(store) as db:
        return db.execute(f"SELECT {KEY}, value FROM results ORDER BY {KEY}").fetchall()


@pytest.mark.slow
def test_sigkill_then_resume(tmp_path):
    store = tmp_path / "killed.sqlite"
    cmd = [sys.executable, "-m", "demixbench.cli", *ARGS, "--store", str(store), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while _count(store) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_at_kill = _count(store)
    assert 3 <= done_at_kill < UNITS

    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"(resumed): {UNITS - done_at_kill} of {UNITS} units computed" in resumed.stdout

    reference = tmp_path / "clean.sqlite"
    clean = subprocess.run([sys.executable, "-m", "demixbench.cli", *ARGS, "--store",
                            str(reference), "--quiet"], capture_output=True, text=True, timeout=600)
    assert clean.returncode == 0, clean.stderr

    got, want = _rows(store), _rows(reference)
    keys = [r[:-1] for r in got]
    assert len(keys) == len(set(keys)), "duplicated rows"
    assert keys == [r[:-1] for r in want], "missing or extra rows"
    for a, b in zip(got, want):
        assert a[-1] == pytest.approx(b[-1], nan_ok=True)
