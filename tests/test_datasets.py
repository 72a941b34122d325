"""Datasets: the synthetic generator's stems are what they claim, the readers' errors, the
excerpt protocol and the embedded demo."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import median_filter
from scipy.signal import stft

from demixbench import STEMS
from demixbench.audio import load_audio, write_audio
from demixbench.datasets import (
    choose_excerpt,
    cut_and_mix,
    demo_dataset,
    open_dataset,
)
from demixbench.datasets.synthetic import synthesize_track
from demixbench.errors import AudioError, DatasetError

SR = 44100


@pytest.fixture(scope="module")
def song():
    return synthesize_track(seed=3, seconds=6.0)


def _percussive_fraction(x: np.ndarray) -> float:
    """HPSS by median filtering (Fitzgerald 2010): share of energy in the percussive mask."""
    mag = np.abs(stft(x.mean(axis=0), fs=SR, nperseg=2048)[-1]) ** 2
    harm = median_filter(mag, size=(1, 17))
    perc = median_filter(mag, size=(17, 1))
    mask = perc > harm
    return float(mag[mask].sum() / mag.sum())


def test_synthetic_layout_and_determinism(song):
    assert set(song) == set(STEMS)
    for x in song.values():
        assert x.shape == (2, 6 * SR) and x.dtype == np.float32
    again = synthesize_track(seed=3, seconds=6.0)
    for k in STEMS:
        np.testing.assert_array_equal(song[k], again[k])
    other = synthesize_track(seed=4, seconds=6.0)
    assert not np.allclose(song["vocals"], other["vocals"])
    assert np.max(np.abs(sum(song.values()))) <= 1.0


def test_synthetic_any_length():
    assert synthesize_track(seed=0, seconds=0.25)["drums"].shape == (2, SR // 4)
    assert synthesize_track(seed=0, seconds=31.0)["bass"].shape == (2, 31 * SR)


def test_bass_energy_below_250_hz(song):
    x = song["bass"].astype(np.float64)
    spec = np.abs(np.fft.rfft(x, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(x.shape[-1], 1 / SR)
    assert spec[:, freqs < 250].sum() / spec.sum() > 0.99


def test_drums_are_percussive_and_other_is_harmonic(song):
    assert _percussive_fraction(song["drums"]) > 0.55
    assert _percussive_fraction(song["other"]) < 0.2
    assert _percussive_fraction(song["vocals"]) < 0.2


def test_vocals_are_pitched_with_pauses_and_vibrato(song):
    v = song["vocals"].mean(axis=0).astype(np.float64)
    frame = 2048
    frames = v[: len(v) // frame * frame].reshape(-1, frame)
    energy = (frames**2).mean(axis=1)
    voiced = energy > 1e-2 * energy.max()
    assert 0.05 < 1 - voiced.mean() < 0.7  # pauses between phrases
    f0s, clarity = [], []
    lo, hi = SR // 600, SR // 100  # 100-600 Hz search range
    for f in frames[voiced]:
        f = f - f.mean()
        ac = np.correlate(f, f, "full")[frame - 1:]
        lag = lo + int(np.argmax(ac[lo:hi]))
        clarity.append(ac[lag] / ac[0])
        f0s.append(SR / lag)
    assert np.median(clarity) > 0.7  # strongly periodic
    f0s = np.array(f0s)
    assert 120 < np.median(f0s) < 600
    # vibrato: the pitch is not constant within long notes -> more distinct f0 values than notes
    assert len(np.unique(np.round(f0s))) > 5


def test_stereo_panning(song):
    left, right = song["other"]
    assert not np.allclose(left, right)  # panned away from the centre


def test_open_dataset_specs():
    d = open_dataset("synthetic:2")
    assert [t.name for t in d] == ["synthetic-test-000", "synthetic-test-001"]
    train = open_dataset("synthetic:2:train")
    assert train.tracks[0].subset == "train"
    a, _ = d.tracks[0].load()
    b, _ = train.tracks[0].load()
    assert not np.allclose(a["vocals"], b["vocals"])  # disjoint seeds
    with pytest.raises(DatasetError, match="unknown dataset 'nosuch'"):
        open_dataset("nosuch")
    with pytest.raises(DatasetError, match="track count must be an integer"):
        open_dataset("synthetic:x")


def test_musdb_reader(musdb_folder, short_track):
    d = open_dataset(f"musdb:{musdb_folder}:test")
    assert [t.name for t in d] == ["song"] and d.tracks[0].subset == "test"
    stems, sr = d.tracks[0].load()
    assert sr == SR
    np.testing.assert_allclose(stems["vocals"], short_track["vocals"], atol=1e-7)
    assert len(open_dataset(f"folder:{musdb_folder / 'test'}")) == 1
    with pytest.raises(DatasetError, match="has no train/ folder"):
        open_dataset(f"musdb:{musdb_folder}:train")


def test_flac_stems(tmp_path, short_track):
    for k in STEMS:
        write_audio(tmp_path / "t" / f"{k}.flac", short_track[k], SR)
    stems, _ = open_dataset(f"folder:{tmp_path}").tracks[0].load()
    np.testing.assert_allclose(stems["drums"], short_track["drums"], atol=1e-4)  # 16-bit


@pytest.mark.parametrize("ext", [".mp3", ".aiff", ".ogg"])
def test_stems_in_any_format_libsndfile_reads(tmp_path, short_track, ext):
    import soundfile as sf

    if ext == ".mp3" and "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile has no MP3 support")
    folder = tmp_path / "test" / "t"
    folder.mkdir(parents=True)
    for k in STEMS:
        sf.write(str(folder / f"{k}{ext}"), short_track[k].T, SR)
    track = open_dataset(f"musdb:{tmp_path}").tracks[0]
    stems, sr = track.load()
    assert track.subset == "test" and sr == SR
    assert all(stems[k].shape == short_track[k].shape for k in STEMS)
    if ext == ".aiff":  # 16-bit PCM
        np.testing.assert_allclose(stems["bass"], short_track["bass"], atol=1e-4)


def test_missing_path():
    with pytest.raises(DatasetError, match="does not exist; pass the folder that holds train/"):
        open_dataset("musdb:/no/such/musdb")


def test_folder_missing_stem(musdb_folder):
    (musdb_folder / "test" / "song" / "bass.wav").unlink()
    with pytest.raises(DatasetError, match=r"song: missing stem\(s\) \['bass'\]"):
        open_dataset(f"musdb:{musdb_folder}")


def test_unreadable_audio(musdb_folder):
    (musdb_folder / "test" / "song" / "drums.wav").write_bytes(b"not audio at all")
    track = open_dataset(f"musdb:{musdb_folder}").tracks[0]
    with pytest.raises(AudioError, match=r"drums.wav: cannot read audio"):
        track.load()


def test_nan_samples(musdb_folder, short_track):
    bad = short_track["other"].copy()
    bad[0, 100] = np.nan
    write_audio(musdb_folder / "test" / "song" / "other.wav", bad, SR)
    with pytest.raises(AudioError, match=r"other.wav: 1 sample\(s\) are NaN or Inf"):
        open_dataset(f"musdb:{musdb_folder}").tracks[0].load()


def test_mismatched_stem_lengths(musdb_folder, short_track):
    write_audio(musdb_folder / "test" / "song" / "vocals.wav", short_track["vocals"][:, :-10], SR)
    with pytest.raises(DatasetError, match=r"mismatched lengths .*'vocals': 132290"):
        open_dataset(f"musdb:{musdb_folder}").tracks[0].load()


def test_mp3_roundtrip(tmp_path, short_track):
    import soundfile as sf

    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile has no MP3 support")
    path = tmp_path / "x.mp3"
    sf.write(str(path), short_track["vocals"].T, SR, format="MP3")
    audio, sr = load_audio(path)
    assert sr == SR and audio.shape[0] == 2 and audio.dtype == np.float32


def test_excerpt_avoids_silent_stems():
    n = 20 * SR
    rng = np.random.default_rng(0)
    stems = {k: (0.1 * rng.standard_normal((2, n))).astype(np.float32) for k in STEMS}
    stems["vocals"][:, : 8 * SR] = 0  # vocals enter at 8 s
    ex = choose_excerpt(stems, SR, 10)
    assert ex.start == 8 * SR and ex.stop == 18 * SR
    assert ex.activity["vocals"] == 1.0 and ex.silent_stems == ()
    cut, mixture = cut_and_mix(stems, ex, {"vocals": 2.0})
    np.testing.assert_allclose(mixture, sum(cut.values()), atol=1e-6)
    np.testing.assert_allclose(cut["vocals"], 2 * stems["vocals"][:, ex.start: ex.stop])
    whole = choose_excerpt(stems, SR, 0)
    assert (whole.start, whole.stop) == (0, n)


def test_demo_dataset_reports_silent_bass():
    d = demo_dataset()
    assert [t.name for t in d] == ["2.Lithium", "6.Caesium"]
    stems, sr = d.tracks[1].load()
    assert sr == SR and stems["bass"].shape == (2, 15 * SR)
    ex = choose_excerpt(stems, sr, 30)
    assert ex.silent_stems == ("bass",)


def test_synthetic_stems_keep_bss_eval_well_conditioned():
    """Regression: exactly band-limited stems made museval's 512-tap projection singular and
    its ISR/SIR/SAR meaningless (SIR near -50 dB for a near-perfect estimate). The noise floor
    keeps the system well posed: an estimate equal to 0.8 x the reference has ISR
    20 log10(1 / 0.2) = 13.98 dB in every frame."""
    from demixbench.metrics import bss_eval_v4

    stems = synthesize_track(seed=5, seconds=2.0)
    refs = np.stack([stems[k].T for k in STEMS]).astype(np.float64)
    _, isr, sir, _ = bss_eval_v4(refs, 0.8 * refs)
    np.testing.assert_allclose(isr, 20 * np.log10(5), atol=0.05)
    assert np.all(sir > 40)


def test_synthetic_songs_are_kept_on_disk_and_a_broken_copy_is_rendered_again(tmp_path,
                                                                              monkeypatch):
    from demixbench.datasets import _synthesized

    monkeypatch.setenv("DEMIXBENCH_SYNTHETIC_CACHE", str(tmp_path))
    _synthesized.cache_clear()
    first = _synthesized(7, 1.0)
    (folder,) = tmp_path.iterdir()
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{k}.npy" for k in STEMS)
    (folder / "bass.npy").write_bytes(b"not numpy")
    _synthesized.cache_clear()
    again = _synthesized(7, 1.0)
    _synthesized.cache_clear()
    assert np.load(folder / "bass.npy").shape == first["bass"].shape  # replaced on disk too
    for k in STEMS:
        np.testing.assert_array_equal(first[k], again[k])
        np.testing.assert_array_equal(first[k], synthesize_track(seed=7, seconds=1.0)[k])


def test_several_excerpts_per_track_do_not_overlap_and_the_first_is_the_protocols(song):
    from demixbench.datasets.excerpt import choose_excerpts

    best = choose_excerpt(song, SR, 2.0)
    pieces = choose_excerpts(song, SR, 2.0, 3)
    assert [p.stop - p.start for p in pieces] == [2 * SR] * 3
    assert best in pieces and pieces == sorted(pieces, key=lambda p: p.start)
    assert all(a.stop <= b.start for a, b in zip(pieces, pieces[1:]))
    with pytest.raises(DatasetError, match=r"no 2 s window of this 6.0 s track is left"):
        choose_excerpts(song, SR, 2.0, 4)
