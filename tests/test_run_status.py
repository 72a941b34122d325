"""Runs that say what they are: a run is owned by every live process working on it, a crashed
or incomplete run says so (units done of planned) in `results`, the report and its leaderboard."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys

from conftest import cli

from demixbench.reports.model import build
from demixbench.runs.store import ResultsStore


def test_a_second_process_killed_on_a_run_does_not_crash_the_live_one(tmp_path):
    path = tmp_path / "s.sqlite"
    with ResultsStore(path) as store:
        store.begin_run("r1", {}, {}, {}, "run", planned=4)
    second = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from demixbench.runs.store import ResultsStore\n"
        f"s = ResultsStore({str(path)!r})\n"
        "s.begin_run('r1', {}, {}, {}, 'run', planned=4)\n"
        "print('joined', flush=True)\n"
        "time.sleep(120)\n")], stdout=subprocess.PIPE, text=True)
    assert second.stdout.readline().strip() == "joined"
    os.kill(second.pid, signal.SIGKILL)
    second.wait(30)
    with ResultsStore(path) as store:
        assert store.mark_stale_runs() == []  # this process still owns the run
        assert store.run_record("r1")["status"] == "running"
        store.finish_run("r1", "complete")
        assert store.run_record("r1")["status"] == "complete"


def test_a_crashed_run_says_so_in_results_and_the_report(tmp_path):
    store = str(tmp_path / "s.sqlite")
    code, out, err = cli("run", "--dataset", "synthetic:2", "--separators", "mix", "--excerpt",
                         "2", "--metrics", "usdr", "--no-report", "--quiet", "--store", store)
    assert code == 0, err
    run_id = next(line.split()[1] for line in out.splitlines() if line.startswith("run "))
    db = sqlite3.connect(store)  # as if the process had died after its first unit
    unit, track = db.execute("SELECT unit, track FROM units ORDER BY finished DESC").fetchone()
    db.execute("DELETE FROM units WHERE unit=?", (unit,))
    db.execute("DELETE FROM results WHERE track=?", (track,))
    db.execute("UPDATE runs SET status='running', owner=?", (json.dumps([f"{os.uname().nodename}"
                                                                         ":999999999"]),))
    db.commit()
    db.close()
    code, _, err = cli("results", "--store", store, "--format", "csv")
    assert code == 0
    assert f"note: run {run_id} is crashed: 1 of 2 units done" in err
    with ResultsStore(store, read_only=True) as s:
        data = build(s, [run_id])
    (r,) = data["header"]["runs"]
    assert (r["status"], r["units_done"], r["planned"]) == ("crashed", 1, 2)
    assert {row["tracks"] for row in data["leaderboard"]["blind"]} == {2}  # of 2 planned
    path = tmp_path / "r.html"
    code, _, err = cli("report", "--store", store, "--run", run_id, "-o", str(path))
    assert code == 0, err
    assert f"Run {run_id} is crashed</b>: 1 of 2 units done" in path.read_text()
