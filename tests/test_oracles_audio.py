"""Oracle masks and the explicit audio conversions."""

from __future__ import annotations

import numpy as np
import pytest

from demixbench.audio import adapt_channels, check_audio, resample
from demixbench.errors import AudioError
from demixbench.metrics import usdr
from demixbench.separators import default_registry

SR = 44100


@pytest.fixture(scope="module")
def refs(short_track):
    return {k: v[:, : 2 * SR] for k, v in short_track.items()}


def _separate(name, refs):
    mixture = np.sum(list(refs.values()), axis=0).astype(np.float32)
    return default_registry().create(name).separate(mixture, SR, references=refs), mixture


def test_irm_estimates_sum_to_the_mixture(refs):
    for name in ("irm1", "irm2"):
        est, mixture = _separate(name, refs)
        np.testing.assert_allclose(sum(est.values()), mixture, atol=1e-4)


def test_oracles_ordering_on_vocals(refs):
    scores = {name: usdr(refs["vocals"], _separate(name, refs)[0]["vocals"])
              for name in ("irm1", "irm2", "ibm1", "ibm2", "mix")}
    assert scores["mix"] < min(scores[n] for n in ("irm1", "irm2", "ibm1", "ibm2"))
    assert scores["irm2"] > 8.0


def test_single_source_gets_everything(refs):
    silent = {k: np.zeros_like(v) for k, v in refs.items()}
    silent["bass"] = refs["bass"]
    est, mixture = _separate("irm2", silent)
    np.testing.assert_allclose(est["bass"], mixture, atol=1e-5)
    assert np.max(np.abs(est["vocals"])) < 1e-6


def test_adapt_channels_records():
    mono = np.ones((1, 10), np.float32)
    out, log = adapt_channels(mono, 2)
    assert out.shape == (2, 10) and log == ["duplicated mono to 2 channels"]
    out, log = adapt_channels(np.stack([np.ones(10), np.zeros(10)]).astype(np.float32), 1)
    np.testing.assert_allclose(out, 0.5)
    assert log == ["averaged 2 channels to mono"]
    assert adapt_channels(mono, None) == (mono, [])
    with pytest.raises(AudioError, match="cannot adapt 3-channel audio to 2"):
        adapt_channels(np.ones((3, 10), np.float32), 2)


def test_resample_records_and_preserves_a_tone():
    t = np.arange(SR) / SR
    x = np.sin(2 * np.pi * 440 * t)[None].astype(np.float32)
    y, log = resample(x, SR, 22050)
    assert y.shape == (1, 22050) and log == ["resampled 44100 Hz -> 22050 Hz (soxr VHQ)"]
    ref = np.sin(2 * np.pi * 440 * np.arange(22050) / 22050)
    assert np.max(np.abs(y[0, 1000:-1000] - ref[1000:-1000])) < 1e-3
    assert resample(x, SR, SR) == (x, [])


@pytest.mark.parametrize("bad, message", [
    (np.ones(10, np.float32), r"expected shape \(channels, samples\)"),
    (np.ones((2, 0), np.float32), "the signal is empty"),
    (np.ones((100, 2), np.float32), "transpose it"),
    (np.full((1, 4), np.nan, np.float32), r"4 sample\(s\) are NaN or Inf"),
])
def test_check_audio(bad, message):
    with pytest.raises(AudioError, match=message):
        check_audio(bad)
