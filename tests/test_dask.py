"""The Dask executor: the same rows as a local run, a scheduler started elsewhere, a worker
killed mid-unit, a unit that raises, resuming across executors."""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3

import pytest

pytest.importorskip("distributed", reason="dask.distributed is not installed")

from dask_separators import FailOnce, KillOnce  # noqa: E402

from demixbench.benchmarks.executors import DaskExecutor  # noqa: E402
from demixbench.benchmarks.runner import RunConfig, Runner  # noqa: E402
from demixbench.benchmarks.store import ResultsStore  # noqa: E402
from demixbench.cli import main  # noqa: E402
from demixbench.errors import DemixbenchError  # noqa: E402
from demixbench.separators.registry import with_instance  # noqa: E402

ARGS = ["run", "--dataset", "synthetic:2", "--separators", "mix,irm1", "--excerpt", "3",
        "--metrics", "sdr,usdr", "--no-report", "--quiet"]


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def values(store) -> dict:
    db = sqlite3.connect(store)
    rows = db.execute("SELECT track, separator, step, target, metric, value, nan_reason "
                      "FROM results").fetchall()
    db.close()
    return {r[:5]: r[5:] for r in rows}


def test_dask_gives_the_rows_of_a_local_run_and_restores_thread_settings(tmp_path):
    before = {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    code, _, err = cli(*ARGS, "--store", str(tmp_path / "dask.sqlite"), "--executor", "dask",
                       "--workers", "2")
    assert code == 0, err
    assert {v: os.environ.get(v) for v in before} == before
    code, _, err = cli(*ARGS, "--store", str(tmp_path / "local.sqlite"))
    assert code == 0, err
    a, b = values(tmp_path / "dask.sqlite"), values(tmp_path / "local.sqlite")
    assert len(a) == 2 * 2 * 5 * 2 and a == b
    machine = sqlite3.connect(tmp_path / "dask.sqlite").execute(
        "SELECT machine FROM runs").fetchone()[0]
    assert '"executor": "dask"' in machine and '"workers": 2' in machine


def test_existing_scheduler_resumes_a_local_run(tmp_path):
    from distributed import LocalCluster

    store = tmp_path / "r.sqlite"
    code, _, err = cli(*ARGS, "--store", str(store))
    assert code == 0, err
    complete = values(store)
    db = sqlite3.connect(store)  # as if the local run had been stopped before its last unit
    unit, track, sep = db.execute("SELECT unit, track, separator FROM units ORDER BY finished DESC"
                                  " LIMIT 1").fetchone()
    db.execute("DELETE FROM units WHERE unit=?", (unit,))
    db.execute("DELETE FROM results WHERE track=? AND separator=?", (track, sep))
    db.commit()
    db.close()
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        code, out, err = cli(*ARGS, "--store", str(store), "--executor",
                             f"dask:{cluster.scheduler_address}")
    assert code == 0, err
    assert "(resumed): 1 of 4 units computed" in out and "3 already done" in out
    assert values(store) == complete


def test_a_killed_worker_is_replaced_and_a_failing_unit_is_recorded_then_retried(tmp_path):
    killer = KillOnce(str(tmp_path / "killed"))
    failer = FailOnce(str(tmp_path / "failed"), track_length=3 * 44100)

    def config(name):
        return RunConfig(datasets=["synthetic:2"], separators=[name], excerpt=3, metrics=["usdr"])

    with ResultsStore(tmp_path / "r.sqlite") as s, DaskExecutor(workers=2) as ex:
        # a worker killed in the middle of a unit: replaced, the unit rerun elsewhere
        killed = Runner(config("kill_once"), s, registry=with_instance(killer), executor=ex).run()
        rows = s.rows(killed.run_id)
        assert (tmp_path / "killed").exists()  # a worker did die
        assert killed.units_run == 2 and not killed.failed
        assert len(rows) == 2 * 5 and len({(r["track"], r["target"]) for r in rows}) == 10
        # a unit that raises: recorded with its message, the other unit stored
        first = Runner(config("fail_once"), s, registry=with_instance(failer), executor=ex).run()
        assert first.units_run == 1 and len(first.failed) == 1
        assert any("failed: RuntimeError: this unit breaks once" in n for n in first.notices)
        assert s.run_status(first.run_id)[0] == "failed"
        again = Runner(config("fail_once"), s, registry=with_instance(failer), executor=ex).run()
    assert again.resumed and again.units_run == 1 and not again.failed


def test_executor_errors_are_one_line(tmp_path):
    code, _, err = cli(*ARGS, "--store", str(tmp_path / "r.sqlite"), "--executor", "slurm")
    assert code == 2 and "--executor slurm: use local, dask" in err
    with pytest.raises(DemixbenchError, match="--threads-per-worker 0"):
        DaskExecutor(threads_per_worker=0)
    with pytest.raises(DemixbenchError, match="no scheduler answers there"), DaskExecutor(
            "tcp://127.0.0.1:1", connect_timeout=2):
        pass
