"""Classic separators and Wiener filtering: building blocks on signals with known answers,
the supervised NMF fit/save/load cycle, and the CLI options (--wiener, --param, fit)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from demixbench import STEMS
from demixbench.cli import main
from demixbench.errors import SeparatorError
from demixbench.metrics.sdr import si_sdr
from demixbench.separators import classic
from demixbench.separators.nmf import NMFSupervised, divergence, nmf
from demixbench.separators.oracles import IRM2, MWF
from demixbench.separators.wiener import wiener_postfilter

SR = 22050


def _sdr(ref, est) -> float:
    return float(np.mean(si_sdr(np.atleast_2d(ref), np.atleast_2d(est))))


@pytest.fixture(scope="module")
def tone_and_clicks():
    n = SR * 3
    t = np.arange(n) / SR
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    clicks = np.zeros(n)
    rng = np.random.default_rng(0)
    burst = int(0.01 * SR)
    for s in np.arange(SR // 8, n - burst, SR // 4):
        clicks[s:s + burst] += rng.standard_normal(burst) * np.exp(-np.arange(burst) / (0.002 * SR))
    return tone, clicks


def test_hpss_splits_a_tone_from_clicks(tone_and_clicks):
    tone, clicks = tone_and_clicks
    mix = (tone + clicks)[None].astype(np.float32)
    n = mix.shape[1]
    harm, perc = classic.hpss(classic.stft(mix, 1024, 256))
    h = classic.istft(harm, 1024, 256, n)
    p = classic.istft(perc, 1024, 256, n)
    # the mixture itself scores about 10 dB (tone) and -11 dB (clicks); measured 30.6 / 20.1
    assert _sdr(tone, h) > 25.0
    assert _sdr(clicks, p) > 15.0
    assert _sdr(tone, mix) < 11.0 and _sdr(clicks, mix) < -10.0


def test_repet_sim_keeps_the_loop_and_extracts_the_tone():
    period = SR // 2
    k = np.arange(period)
    unit = sum(0.2 * np.sin(2 * np.pi * f0 * k / SR) * np.exp(-6 * k / SR) for f0 in (110, 220, 330))
    loop = np.tile(unit, 12)
    t = np.arange(loop.size) / SR
    tone = np.where((t > 2) & (t < 4), 0.3 * np.sin(2 * np.pi * 1234 * t), 0.0)
    mix = (loop + tone)[None].astype(np.float32)
    X = classic.stft(mix, 1024, 256)
    mag = np.abs(X)
    background = classic.repet_sim_background(mag, min_distance=round(0.4 * SR / 256))
    fg = 1.0 - np.minimum(background, mag) / (mag + 1e-12)
    vocals = classic.istft(X * fg, 1024, 256, loop.size)
    accomp = classic.istft(X * (1 - fg), 1024, 256, loop.size)
    # the mixture scores 1.8 dB (tone) and -1.8 dB (loop); measured 14.2 / 13.2
    assert _sdr(tone, vocals) > 10.0
    assert _sdr(loop, accomp) > 10.0


def test_similar_frames_are_the_repetitions():
    rng = np.random.default_rng(3)
    pattern = rng.random((40, 8))
    mag = np.tile(pattern, (1, 6))  # period 8 frames, 48 frames
    idx, counts = classic.similar_frames(mag, min_distance=3, max_frames=6)
    assert np.all(counts == 6)
    for t in range(mag.shape[1]):
        assert set(idx[t]) == {t % 8 + 8 * r for r in range(6)}


def test_repet_sim_median_with_fewer_peaks_than_requested():
    mag = np.tile(np.array([[1.0, 5.0, 2.0]]).T, (1, 3))  # 3 identical frames of 3 bins
    mag = mag + np.array([[0.0, 0.0, 3.0]])  # frame 2 louder in every bin: still cosine-similar
    bg = classic.repet_sim_background(mag, min_distance=1, max_frames=10)
    assert bg.shape == mag.shape and np.all(np.isfinite(bg))


def test_lowpass_keeps_the_low_sine_and_removes_the_high_one():
    t = np.arange(SR * 2) / SR
    low, high = np.sin(2 * np.pi * 100 * t), np.sin(2 * np.pi * 2000 * t)
    y = classic.lowpass((low + high)[None], SR, cutoff=500.0, order=6)[0]
    mid = slice(SR // 2, -SR // 2)
    err = y[mid] - low[mid]
    assert 10 * np.log10(np.mean(err ** 2) / 0.5) < -60.0  # measured -146 dB
    only_high = classic.lowpass(high[None], SR, cutoff=500.0, order=6)[0]
    assert 10 * np.log10(np.mean(only_high[mid] ** 2) / 0.5) < -80.0
    with pytest.raises(SeparatorError, match="below|Nyquist"):
        classic.lowpass(low[None], SR, cutoff=SR / 2)


def test_attenuate_band_scales_only_that_band():
    spec = np.ones((1, 513, 4), dtype=np.complex64)
    out = classic.attenuate_band(spec, 44100, 1024, 300.0, 3000.0, 0.25)
    freqs = np.arange(513) * 44100 / 1024
    inside = (freqs >= 300) & (freqs <= 3000)
    np.testing.assert_allclose(np.abs(out[0, inside]), 0.25)
    np.testing.assert_allclose(np.abs(out[0, ~inside]), 1.0)


def test_nmf_error_falls_with_components_and_iterations():
    rng = np.random.default_rng(0)
    V = rng.random((64, 8)) @ rng.random((8, 200)) + 0.01 * rng.random((64, 200))
    errors = []
    for k in (1, 2, 4, 8):
        losses = []
        for n in (10, 50, 150):  # the same start: each run continues the shorter one
            W, H = nmf(V, k, iterations=n)
            losses.append(divergence(V, W @ H))
        assert np.all(np.diff(losses) <= 1e-9 * losses[0])  # multiplicative updates never climb
        W, H = nmf(V, k, iterations=150)
        np.testing.assert_allclose(W.sum(axis=0), 1.0, rtol=1e-9)
        errors.append(divergence(V, W @ H))
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.02 * errors[0]


def test_nmf_with_fixed_dictionary_recovers_the_activations():
    rng = np.random.default_rng(1)
    W = rng.random((50, 3)) + 0.1
    H = rng.random((3, 80)) + 0.1
    W_out, H_est = nmf(W @ H, 3, iterations=2000, W=W, update_W=False)
    np.testing.assert_array_equal(W_out, W)
    np.testing.assert_allclose(H_est, H, rtol=0.02)
    with pytest.raises(SeparatorError, match="non-negative"):
        nmf(-np.ones((4, 4)), 2)


# -- Wiener filtering ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def panned_sources():
    """Two noises with the same spectrum, one only in the left channel, one only in the right:
    no single-channel mask can split them, a spatial (multichannel) filter can."""
    rng = np.random.default_rng(2)
    n = SR * 2
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    left = np.stack([a, 0.02 * a]).astype(np.float32)  # point sources panned hard left / right
    right = np.stack([0.05 * b, b]).astype(np.float32)
    return {"drums": left, "bass": right}


def test_mwf_uses_the_channels(panned_sources):
    class TwoStem(MWF):
        sources = ("drums", "bass")

    mix = panned_sources["drums"] + panned_sources["bass"]
    est = TwoStem().separate(mix, SR, references=panned_sources)
    for k in ("drums", "bass"):
        assert _sdr(panned_sources[k], est[k]) > 25.0
    # a single-channel oracle mask cannot exploit the panning as well
    class IRM2Two(IRM2):
        sources = ("drums", "bass")
    masked = IRM2Two().separate(mix, SR, references=panned_sources)
    assert _sdr(panned_sources["drums"], masked["drums"]) < _sdr(panned_sources["drums"], est["drums"])


def test_postfilter_keeps_shapes_and_can_sum_to_the_mixture(short_track):
    mix = np.sum(list(short_track.values()), axis=0).astype(np.float32)
    rough = {k: (0.3 * v + 0.7 * mix / 4).astype(np.float32) for k, v in short_track.items()}
    out = wiener_postfilter(mix, rough, iterations=2)
    assert {k: v.shape for k, v in out.items()} == {k: mix.shape for k in STEMS}
    assert all(v.dtype == np.float32 for v in out.values())
    # posterior means add up to the mixture up to the regulariser and the STFT round trip
    total = np.sum(list(out.values()), axis=0)
    assert 10 * np.log10(np.sum((total - mix) ** 2) / np.sum(mix ** 2)) < -60.0
    exact = wiener_postfilter(mix, rough, sum_to_mix=True)
    np.testing.assert_allclose(np.sum(list(exact.values()), axis=0), mix, atol=2e-6)
    # refining leaky estimates (70 % of the mixture's share) helps every stem; measured on this
    # track: drums 5.4 -> 10.1, bass 2.4 -> 8.3, other 0.9 -> 10.6, vocals 5.8 -> 16.7 dB.
    # (Near-perfect estimates get worse: the filter's ceiling is the MWF oracle's.)
    for k in STEMS:
        assert _sdr(short_track[k], out[k]) > _sdr(short_track[k], rough[k])


def test_postfilter_of_the_true_stems_is_the_mwf_oracle(short_track):
    mix = np.sum(list(short_track.values()), axis=0).astype(np.float32)
    out = wiener_postfilter(mix, short_track)
    oracle = MWF().separate(mix, 44100, references=short_track)
    masked = IRM2().separate(mix, 44100, references=short_track)
    for k in STEMS:
        np.testing.assert_allclose(out[k], oracle[k], atol=1e-6)
        # and the multichannel filter beats the single-channel oracle mask on every stem
        assert _sdr(short_track[k], oracle[k]) > _sdr(short_track[k], masked[k])


def test_postfilter_of_a_silent_estimate_stays_silent(short_track):
    mix = np.sum(list(short_track.values()), axis=0).astype(np.float32)
    est = dict(short_track)
    est["bass"] = np.zeros_like(mix)
    out = wiener_postfilter(mix, est)
    assert np.max(np.abs(out["bass"])) < 1e-6
    with pytest.raises(SeparatorError, match="hop <= n_fft"):
        wiener_postfilter(mix, est, n_fft=512, hop=1024)


# -- the separators ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic_track():
    from demixbench.datasets.synthetic import synthesize_track

    return synthesize_track(seed=11, seconds=6.0)


def test_classic_separators_beat_the_mixture_on_their_targets(synthetic_track):
    mix = np.sum(list(synthetic_track.values()), axis=0).astype(np.float32)
    hr = classic.HPSSRepet().separate(mix, 44100)
    for stem in ("drums", "bass", "vocals"):  # HPSS, the low-pass, REPET-SIM
        assert _sdr(synthetic_track[stem], hr[stem]) > _sdr(synthetic_track[stem], mix) + 3.0
    np.testing.assert_allclose(np.sum(list(hr.values()), axis=0), mix, atol=1e-5)
    hn = classic.HPSSNMF(iterations=50).separate(mix, 44100)
    assert _sdr(synthetic_track["drums"], hn["drums"]) > _sdr(synthetic_track["drums"], mix) + 3.0


def test_hpss_repet_rejects_bad_parameters():
    with pytest.raises(SeparatorError, match="drum_band_gain must lie in"):
        classic.HPSSRepet(drum_band_gain=2.0)
    mono = np.zeros((1, 8000), dtype=np.float32)
    mono[0, ::100] = 1.0
    with pytest.raises(SeparatorError, match="Nyquist"):
        classic.HPSSRepet(bass_cutoff=20000.0).separate(mono, 16000)


def test_nmf_supervised_fit_save_load(tmp_path):
    from demixbench.datasets import synthetic_dataset

    train = synthetic_dataset(1, "train", seconds=3.0)
    sep = NMFSupervised.untrained(n_components=4, iterations=30).fit(train)
    path = sep.save(tmp_path / "dicts.npz")
    loaded = NMFSupervised(dictionaries=str(path), n_components=4, iterations=30)
    assert loaded.config_hash() == sep.config_hash()
    assert loaded.fit_info["tracks"] == [t.name for t in train]
    mix = np.sum(list(train.tracks[0].load()[0].values()), axis=0).astype(np.float32)[:, :44100]
    a, b = sep.separate(mix, 44100), loaded.separate(mix, 44100)
    for k in STEMS:
        np.testing.assert_allclose(a[k], b[k], atol=1e-6)
    # Wiener-like masks partition the mixture
    np.testing.assert_allclose(np.sum(list(a.values()), axis=0), mix, atol=1e-4)
    other = NMFSupervised.untrained(n_components=4, iterations=30, seed=1).fit(train)
    assert other.config_hash() != sep.config_hash()
    with pytest.raises(SeparatorError, match="no dictionary file at .*demixbench fit nmf_supervised"):
        NMFSupervised(dictionaries=str(tmp_path / "missing.npz"))
    with pytest.raises(SeparatorError, match="learned with n_fft=2048"):
        NMFSupervised(dictionaries=str(path), n_fft=1024)


def test_shipped_dictionaries_load():
    sep = NMFSupervised()
    assert sep.fit_info["tracks"] and all(t.startswith("synthetic") for t in sep.fit_info["tracks"])
    assert len(sep.params()["dictionaries_sha256"]) == 64


# -- CLI ------------------------------------------------------------------------------------
def test_cli_fit_then_run_with_param(tmp_path, capsys):
    out = tmp_path / "d.npz"
    assert main(["fit", "nmf_supervised", "--dataset", "synthetic:1:train", "--out", str(out),
                 "--param", "nmf_supervised.n_components=2",
                 "--param", "nmf_supervised.iterations=10"]) == 0
    assert out.is_file()
    progress = capsys.readouterr().err.splitlines()
    assert progress[1:3] == ["[1/5] reading synthetic-train-000",
                             "[2/5] learning the drums dictionary"]
    assert progress[-1] == "[5/5] learning the vocals dictionary"
    store = tmp_path / "s.sqlite"
    assert main(["run", "--dataset", "synthetic:1", "--excerpt", "2", "--separators",
                 "nmf_supervised", "--metrics", "si_sdr", "--quiet", "--store", str(store),
                 "--param", f"nmf_supervised.dictionaries={out}",
                 "--param", "nmf_supervised.iterations=10"]) == 0
    assert "nmf_supervised" in capsys.readouterr().out
    assert main(["fit", "irm2", "--dataset", "synthetic:1:train", "--out", str(out)]) == 2
    assert "learns nothing from data" in capsys.readouterr().err


def test_cli_param_errors(tmp_path, capsys):
    common = ["run", "--dataset", "synthetic:1", "--excerpt", "1", "--quiet",
              "--store", str(tmp_path / "s.sqlite"), "--separators", "mix"]
    assert main([*common, "--param", "hpss_repet.max_frames=5"]) == 2
    assert "does not include" in capsys.readouterr().err
    assert main([*common, "--param", "mix.colour=1"]) == 2
    assert "mix: bad parameters" in capsys.readouterr().err
    assert main([*common[:-1], "hpss_nmf", "--param", "hpss_nmf.seed=abc"]) == 2
    assert "--param hpss_nmf.seed=abc: expected an integer" in capsys.readouterr().err
    assert main([*common, "--param", "nonsense"]) == 2
    assert "expected SEPARATOR.PARAMETER=VALUE" in capsys.readouterr().err


def test_cli_wiener_runs_both_variants(tmp_path, capsys):
    from demixbench.runs.store import ResultsStore

    store = tmp_path / "s.sqlite"
    assert main(["run", "--dataset", "synthetic:1", "--excerpt", "2", "--separators", "irm1",
                 "--metrics", "si_sdr", "--quiet", "--store", str(store), "--wiener"]) == 0
    with ResultsStore(store) as s:
        rows = s.rows()
    strategies = {r["strategy"] for r in rows}
    assert strategies == {"none", "wiener"}
    by = {(r["strategy"], r["target"]): r["value"] for r in rows}
    assert all(np.isfinite(v) for v in by.values())
    out = capsys.readouterr().out
    assert re.search(r"^irm1 \(oracle\)\s+wiener\s+drums", out, re.M), out
