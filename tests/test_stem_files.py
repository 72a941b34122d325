"""MUSDB18's ``.stem.mp4`` files (five streams: mixture, drums, bass, other, vocals), read through
ffmpeg; files made here by ffmpeg itself, lossless (ALAC) for exact values and AAC as MUSDB18
ships them."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from demixbench import STEMS
from demixbench.audio import write_audio
from demixbench.datasets import open_dataset
from demixbench.datasets.synthetic import synthesize_track
from demixbench.errors import DatasetError

SR = 44100
needs_ffmpeg = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg is not installed "
                                  "(.ci/run installs it)")


def _stem_file(folder, name, stems, codec):
    order = ["mixture", *STEMS]
    stems = {**stems, "mixture": sum(stems.values())}
    inputs = []
    for k in order:
        write_audio(folder / f"{k}.wav", stems[k], SR)
        inputs += ["-i", str(folder / f"{k}.wav")]
    maps = [arg for i in range(len(order)) for arg in ("-map", str(i))]
    out = folder / f"{name}.stem.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", *inputs, *maps, "-c:a", codec, str(out)],
                   check=True)
    for k in order:
        (folder / f"{k}.wav").unlink()
    return out


@pytest.fixture(scope="module")
def musdb_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("musdb18")
    (root / "test").mkdir()
    (root / "train").mkdir()
    songs = {"A - Lossless": synthesize_track(seed=1, seconds=1.0),
             "B - Aac": synthesize_track(seed=2, seconds=1.0)}
    _stem_file(root / "test", "A - Lossless", songs["A - Lossless"], "alac")
    _stem_file(root / "train", "B - Aac", songs["B - Aac"], "aac")
    return root, songs


@needs_ffmpeg
def test_stem_files_read_in_musdb_stream_order(musdb_root):
    root, songs = musdb_root
    (track,) = open_dataset(f"musdb:{root}:test").tracks
    assert (track.name, track.subset) == ("A - Lossless", "test")
    stems, rate = track.load()
    assert rate == SR and set(stems) == set(STEMS)
    for k in STEMS:  # ALAC keeps the 16-bit samples: within one quantisation step
        np.testing.assert_allclose(stems[k], songs["A - Lossless"][k], atol=1.5 / 2 ** 15)


@needs_ffmpeg
def test_aac_stem_files_decode_to_the_stems(musdb_root):
    root, songs = musdb_root
    names = {t.name: t for t in open_dataset(f"musdb:{root}").tracks}
    assert set(names) == {"A - Lossless", "B - Aac"} and names["B - Aac"].subset == "train"
    stems, _ = names["B - Aac"].load()
    for k in STEMS:  # lossy, but the same signal: strongly correlated, same length within 0.1 s
        ref = songs["B - Aac"][k]
        n = min(ref.shape[1], stems[k].shape[1])
        assert abs(ref.shape[1] - stems[k].shape[1]) < SR // 10
        corr = np.sum(ref[:, :n] * stems[k][:, :n]) / np.sqrt(
            np.sum(ref[:, :n] ** 2) * np.sum(stems[k][:, :n] ** 2))
        assert corr > 0.9, k


def test_stem_files_without_ffmpeg_name_the_package(tmp_path, monkeypatch):
    (tmp_path / "song.stem.mp4").write_bytes(b"\0" * 64)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DatasetError, match=r"needs the ffmpeg and ffprobe programs: install them "
                                           r"\(apt install ffmpeg"):
        open_dataset(f"musdb:{tmp_path}")


@needs_ffmpeg
def test_a_broken_stem_file_is_named(tmp_path):
    (tmp_path / "song.stem.mp4").write_bytes(b"not an mp4")
    (track,) = open_dataset(f"folder:{tmp_path}").tracks
    with pytest.raises(DatasetError, match=r"song\.stem\.mp4: ffprobe cannot read it"):
        track.load()
