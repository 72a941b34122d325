"""Metrics against closed forms and reference implementations, and the silence policy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from demixbench.errors import MetricError
from demixbench.metrics import METRICS, bss_eval_v4, score_track, si_sdr, usdr, with_accompaniment

SR = 44100


def test_every_metric_has_unit_and_direction():
    builtin = {"sdr", "isr", "sir", "sar", "si_sdr", "usdr"}
    msst = {"msst_sdr", "k_sdr", "msst_si_sdr", "l1_freq", "bleedless", "fullness", "aura_stft",
            "aura_mrstft", "log_wmse", "l1_snr"}
    mireval = {"mireval_sdr", "mireval_sir", "mireval_sar"}
    assert set(METRICS) == builtin | msst | mireval
    for m in METRICS.values():
        assert m.higher_is_better is True and m.aggregate in ("median", "mean")
        dbs = builtin | mireval | {"msst_sdr", "msst_si_sdr", "l1_snr"}
        assert m.unit == ("dB" if m.name in dbs else "score")
    assert METRICS["usdr"].aggregate == "mean"  # MDX averages tracks
    assert all(METRICS[n].aggregate == "mean" for n in msst)  # MSST averages tracks


def test_si_sdr_closed_form(rng):
    ref = rng.standard_normal(20000)
    ref -= ref.mean()
    noise = rng.standard_normal(20000)
    noise -= noise.mean()
    noise -= ref * (noise @ ref) / (ref @ ref)  # orthogonal to the reference
    noise *= np.linalg.norm(ref) / np.linalg.norm(noise) * 10 ** (-12 / 20)  # 12 dB below
    assert si_sdr(ref, 3.0 * (ref + noise)) == pytest.approx(12.0, abs=1e-6)  # scale-invariant


@pytest.mark.parametrize("shape", [(1, 8000), (2, 44100), (3, 2, 5000)])
def test_si_sdr_matches_torchmetrics(rng, shape):
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.functional.audio")
    ref = rng.standard_normal(shape).astype(np.float32)
    est = (0.7 * ref + 0.3 * rng.standard_normal(shape) + 0.1).astype(np.float32)
    expected = tm.scale_invariant_signal_distortion_ratio(
        torch.from_numpy(est), torch.from_numpy(ref), zero_mean=True).numpy()
    np.testing.assert_allclose(si_sdr(ref, est), expected, atol=1e-4)


def test_si_sdr_matches_torchmetrics_on_music(short_track):
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.functional.audio")
    ref = short_track["vocals"]
    est = ref + 0.5 * short_track["drums"]
    expected = tm.scale_invariant_signal_distortion_ratio(
        torch.from_numpy(est), torch.from_numpy(ref), zero_mean=True).numpy()
    np.testing.assert_allclose(si_sdr(ref, est), expected, atol=1e-4)


def test_usdr_closed_form(rng):
    ref = rng.standard_normal((2, 1000))
    assert usdr(ref, 0.5 * ref) == pytest.approx(10 * np.log10(4.0), abs=1e-9)
    assert usdr(np.zeros((2, 10)), np.zeros((2, 10))) == 0.0  # delta makes 0/0 defined
    assert usdr(ref, ref) == pytest.approx(10 * np.log10((np.sum(ref**2) + 1e-7) / 1e-7))


def _museval_evaluate(refs, ests, win, hop):
    """museval.evaluate without its package import (which needs ffmpeg): same pad/truncate."""
    from demixbench.metrics.bsseval import _museval_metrics

    n = refs.shape[1]
    ests = ests[:, :n] if ests.shape[1] >= n else np.pad(ests, ((0, 0), (0, n - ests.shape[1]), (0, 0)))
    out = _museval_metrics().bss_eval(refs, ests, window=win, hop=hop, compute_permutation=False,
                                      framewise_filters=False, bsseval_sources_version=False)
    return out[:4]


def test_bss_eval_v4_shapes_and_museval_padding(short_track):
    n = SR * 2
    refs = np.stack([short_track[k][:, :n].T for k in ("vocals", "drums")]).astype(np.float64)
    ests = refs + 0.05 * np.roll(refs, 1, axis=0)
    ests = ests[:, : n - 3000]  # shorter estimates are zero-padded as museval does
    ours = bss_eval_v4(refs, ests, win=SR // 2, hop=SR // 2)
    theirs = _museval_evaluate(refs, ests, SR // 2, SR // 2)
    for a, b in zip(ours, theirs):
        assert a.shape == (2, 4)
        # frame projections run in float32: measured <= 7e-4 dB from museval even at 80 dB SDR
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-3)


def test_bss_eval_v4_rejects_mismatched_sources():
    with pytest.raises(MetricError, match="differ in sources or channels"):
        bss_eval_v4(np.ones((2, 100, 2)), np.ones((3, 100, 2)))


def test_bss_eval_sdr_of_scaled_reference():
    # SDR in images mode is the frame SNR: an estimate equal to the reference plus a small
    # independent error e has SDR = 10 log10(|s|^2 / |e|^2) per frame
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((2, SR, 1))
    err = 0.1 * rng.standard_normal((2, SR, 1))
    sdr, *_ = bss_eval_v4(ref, ref + err, win=SR, hop=SR)
    expected = 10 * np.log10(np.sum(ref**2, axis=(1, 2)) / np.sum(err**2, axis=(1, 2)))
    np.testing.assert_allclose(sdr[:, 0], expected, atol=1e-9)


def _by(scores):
    return {(s.target, s.metric): s for s in scores}


def test_silent_reference_is_nan_with_reason_and_others_still_scored(short_track):
    n = SR * 2
    refs = {k: v[:, :n].copy() for k, v in short_track.items()}
    refs["bass"][:] = 0
    ests = {k: v + 0.05 * refs["drums"] for k, v in refs.items()}
    ests["bass"] = 0.1 * refs["drums"]  # a separator still outputs something for bass
    scores = _by(score_track(refs, ests, ["sdr", "sir", "si_sdr", "usdr"], SR))
    for m in ("sdr", "sir", "si_sdr", "usdr"):
        s = scores[("bass", m)]
        assert math.isnan(s.value) and s.nan_reason == "silent reference"
    # the other targets equal BSS Eval on the non-silent group; vocals is scored with
    # accompaniment as its own two-source problem (museval's eval_mus_track)
    refs_a, ests_a = with_accompaniment(refs), with_accompaniment(ests)
    for group, kept in ((["drums", "other", "vocals"], ["drums", "other"]),
                        (["vocals", "accompaniment"], ["vocals", "accompaniment"])):
        sdr, isr, sir, sar = bss_eval_v4(np.stack([refs_a[k].T for k in group]),
                                         np.stack([ests_a[k].T for k in group]))
        for i, k in enumerate(group):
            if k not in kept:
                continue
            assert scores[(k, "sdr")].value == pytest.approx(np.nanmedian(sdr[i]))
            assert scores[(k, "sir")].value == pytest.approx(np.nanmedian(sir[i]))
            assert scores[(k, "sdr")].nan_reason is None


def test_silent_estimate_policy(short_track):
    n = SR * 2
    refs = {k: v[:, :n] for k, v in short_track.items()}
    ests = dict(refs)
    ests["vocals"] = np.zeros_like(refs["vocals"])
    scores = _by(score_track(refs, ests, ["sdr", "si_sdr", "usdr"], SR))
    assert scores[("vocals", "si_sdr")].nan_reason == "silent estimate"
    assert scores[("vocals", "sdr")].nan_reason == "silent estimate"
    assert scores[("vocals", "usdr")].value == pytest.approx(0.0, abs=1e-6)
    assert scores[("drums", "sdr")].value > 100  # perfect estimates of the others


def test_accompaniment_is_derived_and_scored_with_vocals(short_track):
    n = SR * 2
    refs = {k: v[:, :n] for k, v in short_track.items()}
    two_stem = {"vocals": refs["vocals"] * 0.9,
                "accompaniment": refs["drums"] + refs["bass"] + refs["other"]}
    scores = _by(score_track(refs, two_stem, ["sdr", "usdr"], SR))
    assert {t for t, _ in scores} == {"vocals", "accompaniment"}
    assert scores[("accompaniment", "usdr")].value > 100
    assert scores[("vocals", "usdr")].value == pytest.approx(20.0, abs=1e-3)  # 10 log10(1/0.01)


def test_frames_silent_everywhere_give_reason():
    refs = {k: np.zeros((2, SR * 2), np.float32) for k in ("drums", "bass", "other", "vocals")}
    for k in refs:  # each stem plays in a different half-second: every frame has a silent stem
        refs[k] = refs[k].copy()
    refs["drums"][:, :100] = 0.1
    refs["bass"][:, SR + 5: SR + 100] = 0.1
    refs["other"][:, 10:50] = 0.2
    refs["vocals"][:, SR + 200: SR + 300] = 0.2
    scores = _by(score_track(refs, refs, ["sdr"], SR))
    assert scores[("drums", "sdr")].nan_reason == "no scorable frame"
    assert scores[("drums", "sdr")].detail["valid_frames"] == 0


def test_unknown_metric():
    with pytest.raises(MetricError, match=r"unknown metric\(s\) sdrr; choose from"):
        score_track({}, {}, ["sdrr"], SR)


def test_kept_bytes_drops_the_least_recently_used_beyond_its_budget_and_never_keeps_an_oversize_value():
    from demixbench.metrics.memo import KeptBytes

    kept = KeptBytes(100, len)
    assert kept.put("a", b"x" * 40) and kept.put("b", b"x" * 40)
    assert kept.get("a") == b"x" * 40  # now the most recently used: "b" goes first
    assert kept.put("c", b"x" * 40)
    assert kept.get("b") is None and kept.get("a") is not None and kept.nbytes == 80
    assert kept.put("a", b"x" * 60)  # kept again at another size: the budget counts the new one
    assert kept.nbytes == 100 and len(kept) == 2
    assert not kept.put("a", b"x" * 101)  # alone over the budget: not kept, nor its old value
    assert kept.get("a") is None and kept.get("c") == b"x" * 40
    kept.clear()
    assert len(kept) == 0 and kept.nbytes == 0
