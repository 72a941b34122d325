"""`demixbench evaluate`: estimates written by `demixbench separate` score exactly as the
built-in run of that separator; missing and mismatched files are listed, not skipped."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import cli

from demixbench import STEMS
from demixbench.audio import load_audio, write_audio
from demixbench.datasets import open_dataset
from demixbench.runs.store import ResultsStore

KEY = ("track", "subset", "excerpt", "target", "metric")



@pytest.fixture(scope="module")
def separated(tmp_path_factory):
    """hpss_repet's estimates of the synthetic:2 mixtures, written by `demixbench separate`."""
    root = tmp_path_factory.mktemp("evaluate")
    mixes = []
    for track in open_dataset("synthetic:2").tracks:
        stems, sr = track.load()
        mixes.append(str(write_audio(root / "mixtures" / f"{track.name}.wav",
                                     np.sum([stems[k] for k in STEMS], axis=0), sr)))
    # several files: each file's stems in estimates/<file name>/, a progress line per file
    code, _, err = cli("separate", *mixes, "-s", "hpss_repet", "-o", str(root / "estimates"))
    assert code == 0, err
    assert err.splitlines() == ["[1/2] hpss_repet on synthetic-test-000.wav",
                                "[2/2] hpss_repet on synthetic-test-001.wav"]
    return root


def rows_by_key(store, run_id) -> dict:
    with ResultsStore(store, read_only=True) as s:
        return {tuple(r[k] for k in KEY): (r["value"], r["nan_reason"]) for r in s.rows(run_id)}


def test_evaluate_equals_the_built_in_run_row_for_row(separated):
    store = separated / "store.sqlite"
    code, out, err = cli("evaluate", str(separated / "estimates"), "--references", "synthetic:2",
                         "--name", "hpss_files", "--store", str(store), "--quiet")
    assert code == 0, err
    external = out.split("run ")[-1].split(":")[0]
    code, out, err = cli("run", "--dataset", "synthetic:2", "--separators", "hpss_repet",
                         "--excerpt", "0", "--store", str(store), "--no-report", "--quiet")
    assert code == 0, err
    built_in = out.split("\nrun ")[-1].split(" ")[0]
    a, b = rows_by_key(store, external), rows_by_key(store, built_in)
    assert len(a) == 2 * 5 * 6 and a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], nan_ok=True), k
    with ResultsStore(store, read_only=True) as s:
        config = next(c for h, c in s.configs([external]).items() if c.get("name") == "hpss_files")
    assert config["params"]["external"] is True


def test_missing_files_are_listed_and_lengths_and_rates_adapted(separated, tmp_path):
    est = tmp_path / "est"
    tracks = [t.name for t in open_dataset("synthetic:3").tracks]
    for t in tracks[:2]:
        for stem in STEMS:
            audio, sr = load_audio(separated / "estimates" / t / f"{stem}.wav")
            if t == tracks[0] and stem == "vocals":
                audio = audio[:, : audio.shape[1] - 1000]  # short: zero-padded
            write_audio(est / "test" / t / f"{stem}.wav", audio, sr)
    (est / "test" / tracks[1] / "bass.wav").unlink()  # a missing target
    write_audio(est / "test" / "not-a-track" / "vocals.wav", np.zeros((2, 100), np.float32), 44100)
    store = tmp_path / "store.sqlite"
    code, out, err = cli("evaluate", str(est), "--references", "synthetic:3", "--name", "partial",
                         "--store", str(store), "--metrics", "usdr", "--quiet")
    assert code == 0, err
    assert f"synthetic:3/{tracks[1]}: no estimate of bass" in err
    assert f"synthetic:3/{tracks[2]}: no estimates in {est}" in err
    assert "not-a-track match no track of synthetic:3" in err
    with ResultsStore(store, read_only=True) as s:
        run_id = s.latest_run()
        units = s.unit_records(run_id)
    assert [u["track"] for u in units] == [tracks[0]]
    assert "separator: vocals: 351800 samples, the reference 352800: zero-padded" in units[0][
        "conversions"]


def test_evaluate_refuses_a_taken_name_and_an_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = cli("evaluate", str(tmp_path / "empty"), "--references", "synthetic:1",
                       "--name", "x", "--store", str(tmp_path / "s.sqlite"))
    assert code == 2 and "no estimates found" in err
    code, _, err = cli("evaluate", str(tmp_path), "--references", "synthetic:1", "--name", "mix",
                       "--store", str(tmp_path / "s.sqlite"))
    assert code == 2 and "--name mix is an installed separator" in err


def test_a_truncated_wav_or_a_three_channel_estimate_is_an_error_naming_the_file(separated,
                                                                                tmp_path):
    """A WAV cut short of its header (a truncated copy) used to be zero-padded and scored."""
    import shutil

    estimates = tmp_path / "estimates"
    shutil.copytree(separated / "estimates", estimates)
    vocals = estimates / "synthetic-test-000" / "vocals.wav"
    data = vocals.read_bytes()
    vocals.write_bytes(data[: len(data) // 2])
    code, _, err = cli("evaluate", str(estimates), "--references", "synthetic:2", "--name",
                       "cut", "--metrics", "usdr", "--quiet", "--store", str(tmp_path / "s.sqlite"))
    assert code == 2
    assert f"{vocals}: the file ends" in err and "before its WAV header says" in err
    audio, sr = load_audio(separated / "estimates" / "synthetic-test-000" / "vocals.wav")
    write_audio(vocals, np.concatenate([audio, audio[:1]]), sr)  # three channels
    code, _, err = cli("evaluate", str(estimates), "--references", "synthetic:2", "--name",
                       "three", "--metrics", "usdr", "--quiet", "--store",
                       str(tmp_path / "t.sqlite"))
    assert code == 2 and f"{vocals} (track test/synthetic-test-000, vocals)" in err
    assert "cannot adapt 3-channel audio to 2 channels" in err
