"""End-to-end runs through the CLI's main(), and the one-line errors users meet."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest

from demixbench import STEMS
from demixbench.audio import write_audio
from demixbench.cli import main

SR = 44100


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


RUN = ["run", "--dataset", "synthetic:2", "--excerpt", "3", "--separators", "mix,irm2"]


@pytest.fixture(scope="module")
def finished_store(tmp_path_factory):
    """One benchmark run shared by the tests below: (store path, stdout, stderr)."""
    import contextlib

    store = tmp_path_factory.mktemp("run") / "r.sqlite"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*RUN, "--store", str(store)])
    assert code == 0, err.getvalue()
    return store, out.getvalue(), err.getvalue()


def test_run_prints_leaderboard_where_oracle_beats_mix(finished_store, capsys):
    store, out, err = finished_store
    assert "irm2 (oracle)" in out and "cSDR" in out and "uSDR" in out and "SI-SDR" in out
    assert f"store: {store}" in out
    assert "[1/4] mix on synthetic:2/synthetic-test-000" in err  # progress on stderr

    from demixbench.reports.leaderboard import leaderboard
    from demixbench.runs.store import ResultsStore

    with ResultsStore(store) as s:
        board = {(e["separator"], e["target"]): e for e in leaderboard(s.rows())}
    for target in (*STEMS, "accompaniment"):
        for col in ("cSDR", "uSDR", "SI-SDR"):
            assert board[("irm2", target)][col] > board[("mix", target)][col], (target, col)

    # the same command again resumes: nothing to compute
    code, out, _ = _run(capsys, *RUN, "--store", str(store))
    assert code == 0 and "(resumed): 0 of 4 units computed" in out


def test_results_formats(finished_store, capsys):
    store = finished_store[0]
    code, out, _ = _run(capsys, "results", "--store", str(store), "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {"run", "track", "separator", "strategy", "step", "target", "metric",
            "value"} <= set(rows[0])
    # 2 tracks x (mix: 5 targets, irm2: 5 targets incl. derived accompaniment) x 6 metrics
    assert len(rows) == 2 * (5 + 5) * 6
    assert {r["step"] for r in rows} == {"0"} and {r["strategy"] for r in rows} == {"none"}
    assert {r["oracle"] for r in rows if r["separator"] == "irm2"} == {"1"}

    code, out, _ = _run(capsys, "results", "--store", str(store), "--format", "json")
    data = json.loads(out)
    assert len(data) == len(rows) and data[0]["metric"] in ("sdr", "isr", "sir", "sar", "si_sdr", "usdr")

    code, out, _ = _run(capsys, "results", "--store", str(store), "--format", "table")
    assert out.splitlines()[0].split()[:4] == ["run", "dataset", "track", "excerpt"]


def test_results_as_parquet_keep_types_and_values(finished_store, capsys, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    store = finished_store[0]
    _, out, _ = _run(capsys, "results", "--store", str(store), "--format", "json")
    expected = json.loads(out)
    code, out, _ = _run(capsys, "results", "--store", str(store), "--format", "parquet",
                        "--out", str(tmp_path / "r.parquet"))
    assert code == 0 and out.strip().endswith("r.parquet") and out.startswith("120 rows")
    table = pq.read_table(tmp_path / "r.parquet")
    assert {str(table.schema.field(c).type) for c in ("value", "step", "oracle")} == {
        "double", "int64", "bool"}
    got = table.to_pylist()
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert (g["track"], g["separator"], g["target"], g["metric"], g["step"]) == (
            e["track"], e["separator"], e["target"], e["metric"], e["step"])
        if e["value"] is None:  # JSON's null is Parquet's NaN (the reason is in nan_reason)
            assert np.isnan(g["value"]) and g["nan_reason"] == e["nan_reason"]
        else:
            assert g["value"] == e["value"]
    line = _one_line_error(capsys, "results", "--store", str(store), "--format", "parquet")
    assert "--format parquet writes a file: give it with --out" in line


def test_list(capsys):
    code, out, _ = _run(capsys, "list")
    assert code == 0
    for name in ("mix", "irm1", "irm2", "ibm1", "ibm2"):
        assert f"  {name} " in out
    assert re.search(r"^  si_sdr\s+dB\s+higher\s+signal\s+median\s+demixbench", out, re.M), out
    for kind in ("separators:", "strategies:", "metrics:", "datasets"):
        assert kind in out


def test_list_names_the_packages_and_versions_results_are_computed_with(capsys, monkeypatch):
    from importlib import metadata

    from demixbench.cli import listing

    code, out, _ = _run(capsys, "list")
    assert code == 0
    torch = re.escape(f"torch {metadata.version('torch')}")
    roformer = re.escape(f"bs-roformer {metadata.version('bs-roformer')}")
    assert re.search(rf"^  bs_roformer\s.*\sdemixbench\s+{roformer}, {torch}\s", out, re.M), out
    assert re.search(rf"^  htdemucs\s.*\s{re.escape('demucs ' + metadata.version('demucs'))}, "
                     rf"{torch}\s", out, re.M)
    wmse = re.escape(f"log-wmse-audio-quality {metadata.version('log-wmse-audio-quality')}")
    assert re.search(rf"^  log_wmse\s+score\s+higher\s+signal\s+mean\s+demixbench\s+{wmse}\s",
                     out, re.M)
    assert re.search(r"^  bleedless\s.*\sdemixbench\s+librosa \d", out, re.M)
    assert re.search(r"^  irm1\s.*\sdemixbench\s{3,}ideal ratio mask", out, re.M)  # numpy only
    # an absent package is named as such (open-unmix's cannot be installed beside CPU torch)
    assert listing.runs_on(["no-such-distribution-xyz", "torch"]) == (
        f"no-such-distribution-xyz (not installed), torch {metadata.version('torch')}")


def test_separate_writes_one_file_per_stem(tmp_path, capsys, short_track):
    mix = sum(short_track.values())[:, : SR]
    write_audio(tmp_path / "in.wav", mix, SR)
    code, out, _ = _run(capsys, "separate", str(tmp_path / "in.wav"), "-s", "mix", "-o",
                        str(tmp_path / "out"))
    assert code == 0
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == sorted(f"{s}.wav" for s in (*STEMS, "accompaniment"))


def _one_line_error(capsys, *argv) -> str:
    code, _, err = _run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("demixbench: error: "), err
    return lines[0]


def test_error_unknown_separator(tmp_path, capsys):
    line = _one_line_error(capsys, "run", "--dataset", "synthetic:1", "--separators", "irm3",
                           "--store", str(tmp_path / "r.sqlite"))
    assert "unknown separator 'irm3'; known:" in line and "demixbench list" in line


def test_labelled_separator_runs_beside_its_plain_self(tmp_path, capsys):
    """NAME@LABEL: one run holds a separator twice with other parameters, as its own rows."""
    store = tmp_path / "r.sqlite"
    code, _, err = _run(capsys, "run", "--dataset", "synthetic:1", "--excerpt", "2",
                        "--separators", "irm1,irm1@coarse", "--param", "irm1@coarse.n_fft=256",
                        "--metrics", "usdr", "--store", str(store), "--no-report", "--quiet")
    assert code == 0, err
    code, out, _ = _run(capsys, "results", "--store", str(store), "--format", "json")
    rows = json.loads(out)
    usdr = {(r["separator"], r["target"]): r["value"] for r in rows}
    assert {s for s, _ in usdr} == {"irm1", "irm1@coarse"}
    # a 256-point STFT masks worse than the default 2048-point one: the parameter reached it
    assert usdr[("irm1", "vocals")] > usdr[("irm1@coarse", "vocals")]

    line = _one_line_error(capsys, "run", "--dataset", "synthetic:1", "--separators", "irm1@a.b",
                           "--store", str(store))
    assert "write NAME@LABEL with a label of letters, digits, _ or -" in line


def test_error_missing_dataset_path(tmp_path, capsys):
    line = _one_line_error(capsys, "run", "--dataset", f"musdb:{tmp_path}/nope", "--store",
                           str(tmp_path / "r.sqlite"))
    assert "does not exist; pass the folder that holds train/ and test/" in line


def test_error_folder_missing_stem(musdb_folder, capsys, tmp_path):
    (musdb_folder / "test" / "song" / "other.wav").unlink()
    line = _one_line_error(capsys, "run", "--dataset", f"musdb:{musdb_folder}", "--store",
                           str(tmp_path / "r.sqlite"))
    assert "missing stem(s) ['other']" in line and "other.wav" in line


def test_error_unreadable_audio(musdb_folder, capsys, tmp_path):
    (musdb_folder / "test" / "song" / "vocals.wav").write_text("garbage")
    line = _one_line_error(capsys, "run", "--dataset", f"musdb:{musdb_folder}", "--separators",
                           "mix", "--store", str(tmp_path / "r.sqlite"))
    assert "vocals.wav: cannot read audio" in line and "convert it to WAV or FLAC" in line


def test_error_nan_samples(musdb_folder, capsys, tmp_path, short_track):
    bad = short_track["bass"].copy()
    bad[1, 5] = np.inf
    write_audio(musdb_folder / "test" / "song" / "bass.wav", bad, SR)
    line = _one_line_error(capsys, "run", "--dataset", f"musdb:{musdb_folder}", "--separators",
                           "mix", "--store", str(tmp_path / "r.sqlite"))
    assert "bass.wav: 1 sample(s) are NaN or Inf" in line


def test_error_mismatched_lengths(musdb_folder, capsys, tmp_path, short_track):
    write_audio(musdb_folder / "test" / "song" / "drums.wav", short_track["drums"][:, :1000], SR)
    line = _one_line_error(capsys, "run", "--dataset", f"musdb:{musdb_folder}", "--separators",
                           "mix", "--store", str(tmp_path / "r.sqlite"))
    assert "mismatched lengths" in line and "'drums': 1000" in line


def test_error_separate_oracle_and_bad_file(tmp_path, capsys):
    line = _one_line_error(capsys, "separate", str(tmp_path / "none.wav"), "-s", "mix", "-o",
                           str(tmp_path))
    assert "no such audio file" in line
    write_audio(tmp_path / "x.wav", np.zeros((2, 100), np.float32), SR)
    line = _one_line_error(capsys, "separate", str(tmp_path / "x.wav"), "-s", "irm2", "-o",
                           str(tmp_path))
    assert "irm2 is an oracle" in line


def test_error_results_without_store(tmp_path, capsys):
    line = _one_line_error(capsys, "results", "--store", str(tmp_path / "none.sqlite"))
    assert "no results store at" in line


def test_error_unknown_metric(tmp_path, capsys):
    line = _one_line_error(capsys, "run", "--dataset", "synthetic:1", "--metrics", "sdr,pesq",
                           "--store", str(tmp_path / "r.sqlite"))
    assert "unknown metric(s) pesq" in line


def test_changed_audio_starts_a_new_run_instead_of_resuming(musdb_folder, capsys, tmp_path,
                                                            short_track):
    args = ["run", "--dataset", f"musdb:{musdb_folder}", "--separators", "mix", "--metrics",
            "usdr", "--store", str(tmp_path / "r.sqlite")]
    assert _run(capsys, *args)[0] == 0
    code, out, _ = _run(capsys, *args)
    assert "(resumed): 0 of 1 units computed" in out
    write_audio(musdb_folder / "test" / "song" / "vocals.wav", 0.5 * short_track["vocals"], SR)
    code, out, _ = _run(capsys, *args)
    assert code == 0 and "(new): 1 of 1 units computed" in out


@pytest.mark.slow
def test_bsseval_backends_give_the_same_rows(tmp_path, capsys):
    from demixbench.runs.store import ResultsStore

    values = {}
    for backend in ("numpy", "museval"):
        store = tmp_path / f"{backend}.sqlite"
        code, _, err = _run(capsys, "run", "--dataset", "synthetic:1", "--excerpt", "2",
                            "--separators", "irm1", "--metrics", "sdr,isr,sir,sar",
                            "--bsseval", backend, "--store", str(store), "--quiet")
        assert code == 0, err
        with ResultsStore(store) as s:
            values[backend] = {(r["target"], r["metric"]): r["value"] for r in s.rows()}
    assert values["numpy"].keys() == values["museval"].keys() and len(values["numpy"]) == 20
    for key, v in values["numpy"].items():
        assert v == pytest.approx(values["museval"][key], abs=0.01), key


def test_excerpts_per_track_are_scored_as_tracks(tmp_path, capsys):
    store = tmp_path / "k.sqlite"
    code, out, err = _run(capsys, "run", "--dataset", "synthetic:1", "--excerpt", "2",
                          "--excerpts-per-track", "3", "--separators", "mix", "--metrics",
                          "usdr", "--store", str(store), "--quiet", "--no-report")
    assert code == 0, err
    from demixbench.runs.store import ResultsStore

    with ResultsStore(store) as s:
        rows = s.rows()
    assert {r["track"] for r in rows} == {f"synthetic-test-000 #{i}" for i in (1, 2, 3)}
    assert len({r["value"] for r in rows if r["target"] == "vocals"}) == 3  # three excerpts
    line = _one_line_error(capsys, "run", "--dataset", "synthetic:1", "--excerpt", "3",
                           "--excerpts-per-track", "3", "--separators", "mix", "--store",
                           str(tmp_path / "x.sqlite"), "--quiet", "--no-report")
    assert "3 excerpts of 3 s do not fit in it; lower --excerpts-per-track" in line
    line = _one_line_error(capsys, "run", "--dataset", "synthetic:1", "--excerpt", "0",
                           "--excerpts-per-track", "2", "--store", str(tmp_path / "y.sqlite"))
    assert "--excerpts-per-track needs an excerpt length" in line
