"""The Dask executor: the same rows as a local run, a scheduler started elsewhere, a worker
killed mid-unit, a unit that raises, resuming across executors."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import cli

pytest.importorskip("distributed", reason="dask.distributed is not installed")

from dask_separators import FailOnce, KillOnce, WantsGpu  # noqa: E402

from demixbench.errors import DemixbenchError  # noqa: E402
from demixbench.runs.executors import DaskExecutor  # noqa: E402
from demixbench.runs.runner import RunConfig, Runner  # noqa: E402
from demixbench.runs.store import ResultsStore  # noqa: E402
from demixbench.separators.registry import with_instance  # noqa: E402

ARGS = ["run", "--dataset", "synthetic:2", "--separators", "mix,irm1", "--excerpt", "3",
        "--metrics", "sdr,usdr", "--no-report", "--quiet"]


@pytest.fixture(autouse=True)
def keep_thread_settings():
    """A LocalCluster made by a test sets OMP_NUM_THREADS=1 (and the like) in this process, as
    Dask's nanny does; left there, every later test would run BSS Eval and torch on one
    thread."""
    from demixbench.runs.executors import THREAD_VARS

    saved = {v: os.environ.get(v) for v in THREAD_VARS}
    yield
    for var, value in saved.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value



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


@pytest.mark.slow
def test_labelled_separators_run_on_dask_as_they_run_here(tmp_path):
    """``unet@early`` (a label: another checkpoint of one model) is built on the workers from
    the same spec as here, so its units pass the configuration check and give the local rows."""
    pytest.importorskip("torch")
    from pathlib import Path

    early = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "early" / "unet.pt"
    args = ["run", "--dataset", "synthetic:1", "--separators", "unet@early,unet", "--param",
            f"unet@early.weights={early}", "--excerpt", "3", "--metrics", "usdr", "--no-report",
            "--quiet"]
    code, out, err = cli(*args, "--store", str(tmp_path / "dask.sqlite"), "--executor", "dask",
                         "--workers", "2")
    assert code == 0, err
    assert "2 of 2 units computed" in out and "failed" not in err
    code, _, err = cli(*args, "--store", str(tmp_path / "local.sqlite"))
    assert code == 0, err
    a, b = values(tmp_path / "dask.sqlite"), values(tmp_path / "local.sqlite")
    assert {k[1] for k in a} == {"unet@early", "unet"}
    assert len(a) == 2 * 5 and a == b
    assert a[("synthetic-test-000", "unet@early", 0, "vocals", "usdr")] != \
        a[("synthetic-test-000", "unet", 0, "vocals", "usdr")]


@pytest.mark.slow
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


@pytest.mark.slow
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
        stored = s.run_record(again.run_id)
    assert again.resumed and again.units_run == 1 and not again.failed
    # the retried unit succeeded: its failure notice is gone from the run
    assert stored["status"] == "complete" and "failed" not in stored["notices"]


@pytest.mark.slow
def test_units_asking_for_a_gpu_wait_for_a_gpu_worker(tmp_path):
    from distributed import LocalCluster

    log = tmp_path / "ran-on"
    sep = WantsGpu(str(log))
    config = RunConfig(datasets=["synthetic:2"], separators=["wants_gpu"], excerpt=3,
                       metrics=["usdr"])
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster, \
            ResultsStore(tmp_path / "r.sqlite") as s, \
            DaskExecutor(cluster.scheduler_address) as ex:
        with pytest.raises(DemixbenchError, match=r"wants_gpu asks for a worker with GPU=1 and no "
                                                  r"worker of the cluster offers it"):
            Runner(config, s, registry=with_instance(sep), executor=ex).run()
        # the way a user adds a GPU worker to their cluster
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker",
                                   cluster.scheduler_address, "--resources", "GPU=1", "--name",
                                   "gpu-worker", "--nthreads", "1", "--no-dashboard"],
                                  env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            ex.client.wait_for_workers(2, timeout=60)
            summary = Runner(config, s, registry=with_instance(sep), executor=ex).run()
        finally:
            worker.terminate()
            worker.wait(30)
    assert summary.units_run == 2 and not summary.failed
    assert log.read_text().split() == ["gpu-worker", "gpu-worker"]


def test_executor_errors_are_one_line(tmp_path):
    code, _, err = cli(*ARGS, "--store", str(tmp_path / "r.sqlite"), "--executor", "slurm")
    assert code == 2 and "--executor slurm: use local, dask" in err
    for workers in ("0", "-2"):
        code, _, err = cli(*ARGS, "--store", str(tmp_path / "r.sqlite"), "--executor", "dask",
                           "--workers", workers)
        assert code == 2 and err.strip() == (f"demixbench: error: --workers {workers}: give 1 or "
                                             "more (or leave it out: one worker per core)")
    with pytest.raises(DemixbenchError, match="--threads-per-worker 0"):
        DaskExecutor(threads_per_worker=0)
    with pytest.raises(DemixbenchError, match="no scheduler answers there"), DaskExecutor(
            "tcp://127.0.0.1:1", connect_timeout=2):
        pass


@pytest.mark.slow
def test_ctrl_c_stops_the_cluster_and_the_run_resumes(tmp_path):
    import psutil

    store = tmp_path / "s.sqlite"
    cmd = [sys.executable, "-m", "demixbench.cli", "run", "--dataset", "synthetic:5", "--excerpt",
           "2", "--separators", "irm1", "--metrics", "usdr", "--store", str(store),
           "--quiet", "--no-cache", "--no-report"]
    # its own process group, as a terminal's foreground job: Ctrl-C reaches every process in it
    proc = subprocess.Popen([*cmd, "--executor", "dask", "--workers", "1"], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        with contextlib.suppress(sqlite3.Error), sqlite3.connect(store) as db:
            if db.execute("SELECT COUNT(*) FROM units").fetchone()[0] >= 1:
                break
        time.sleep(0.02)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children  # the nanny and its worker
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["demixbench: interrupted; finished units are saved: "
                                        "run the same command again to resume"]  # one line
    _, alive = psutil.wait_procs(children, timeout=20)
    assert not alive  # no worker left behind
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT status FROM runs").fetchone()[0] == "interrupted"
        stored = db.execute("SELECT COUNT(*) FROM units").fetchone()[0]
    assert 1 <= stored < 5
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"(resumed): {5 - stored} of 5 units computed" in again.stdout
