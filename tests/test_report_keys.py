"""Reports key rows by everything that made them: two runs that differ only by their settings
stay two measurements, labelled by what differs; train and test tracks of one name are two
tracks."""

from __future__ import annotations

import shutil

from conftest import cli

from demixbench.reports.model import build
from demixbench.runs.store import ResultsStore


def run_id(out: str) -> str:
    return next(line.split()[1] for line in out.splitlines() if line.startswith("run "))


def test_a_report_over_runs_that_differ_by_gains_keeps_both(tmp_path):
    store = str(tmp_path / "s.sqlite")
    args = ["run", "--dataset", "synthetic:1", "--separators", "mix", "--excerpt", "2",
            "--metrics", "usdr", "--no-report", "--quiet", "--store", store]
    code, out_a, err = cli(*args)
    assert code == 0, err
    code, out_b, err = cli(*args, "--gains", "vocals=2")
    assert code == 0, err
    with ResultsStore(store, read_only=True) as s:
        data = build(s, [run_id(out_a), run_id(out_b)])
    labels = set(data["variants"])
    assert labels == {"mix[gains=none]", "mix[gains=vocals=2]"}, labels
    vocals = {p["v"]: p["y"] for p in data["points"] if p["t"] == "vocals"}
    assert len(vocals) == 2 and vocals["mix[gains=vocals=2]"] > vocals["mix[gains=none]"]


def test_train_and_test_tracks_of_one_name_pair_six_of_six(tmp_path):
    code, _, err = cli("synth", str(tmp_path / "gen"), "--tracks", "3", "--seconds", "3")
    assert code == 0, err
    for subset in ("train", "test"):
        for i, song in enumerate(sorted((tmp_path / "gen" / "test").iterdir())):
            target = tmp_path / "db" / subset / f"song{i}"
            shutil.copytree(song, target)
    store = str(tmp_path / "s.sqlite")
    code, out, err = cli("run", "--dataset", f"musdb:{tmp_path / 'db'}", "--separators", "irm1",
                         "--excerpt", "2", "--metrics", "usdr", "--strategy",
                         "progressive:target=vocals,steps=1", "--no-report", "--quiet",
                         "--store", store)
    assert code == 0, err
    with ResultsStore(store, read_only=True) as s:
        data = build(s, [run_id(out)])
    (curve,) = [c for c in data["strategies"] if c["metric"].startswith("uSDR")]
    assert [s["n"] for s in curve["steps"]] == [6, 6]
