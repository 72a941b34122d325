"""MSST's metrics against the values MSST's own code computed on the CC0 excerpts
(shared/reference/msst/msst-metrics-reference.json), to 1e-4 relative, and through a run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SHARED, cli

from demixbench.metrics import METRICS, msst

REFERENCE = SHARED / "reference" / "msst" / "msst-metrics-reference.json"
AUDIO = SHARED / "data" / "cc0-multitrack"
pytestmark = pytest.mark.skipif(not REFERENCE.is_file() or not AUDIO.is_dir(),
                                reason="the MSST reference values are not beside the repository")
OURS = {"sdr": msst.msst_sdr, "k_sdr": msst.k_sdr, "si_sdr": msst.msst_si_sdr,
        "l1_freq": msst.l1_freq, "bleedless": msst.bleedless, "fullness": msst.fullness,
        "aura_stft": msst.aura_stft, "aura_mrstft": msst.aura_mrstft, "log_wmse": msst.log_wmse,
        "l1_snr": msst.l1_snr}
WINDOW = 441000  # the reference's 'values' score the first 10 s


@pytest.fixture(scope="module")
def cases():
    import soundfile as sf

    doc = json.loads(REFERENCE.read_text())
    audio = {}

    def load(track, name):
        if (track, name) not in audio:  # float64, as MSST reads it
            audio[(track, name)] = sf.read(str(AUDIO / track / f"{name}.flac"))[0].T[:, :WINDOW]
        return audio[(track, name)]

    out = []
    for v in doc["values"]:
        if v["metric"] not in OURS or v.get("value") is None:
            continue
        ref, mix = load(v["track"], v["target"]), load(v["track"], "mixture")
        if v["estimate"] == "half_mixture":
            est = (0.5 * mix).astype(np.float32)
        elif v["estimate"] == "ref_plus_5pct_residual":
            est = (ref + 0.05 * (mix - ref)).astype(np.float32)
        else:
            noise = np.random.default_rng(0).standard_normal(ref.shape) * 0.01
            est = (0.8 * ref + noise).astype(np.float32)
        out.append((v, ref, est, mix))
    return out


# aura_mrstft: 3.4 s a call here, nearly all in auraloss' A-weighting FIR (torch.conv1d)
@pytest.mark.parametrize("metric", [pytest.param(m, marks=pytest.mark.slow) if m == "aura_mrstft"
                                    else m for m in OURS])
def test_every_reference_value_matches(cases, metric):
    if metric.startswith("aura"):
        pytest.importorskip("auraloss", reason="auraloss is not installed (extra msst)")
    if metric == "log_wmse":
        pytest.importorskip("log_wmse_audio_quality", reason="extra msst is not installed")
    extra = {"mixture"} if metric == "log_wmse" else set()
    mine = [(v, OURS[metric](ref, est, 44100, **{k: mix for k in extra}))
            for v, ref, est, mix in cases if v["metric"] == metric]
    assert len(mine) == 24  # 2 tracks x 4 targets x 3 estimates
    for v, got in mine:
        assert got == pytest.approx(v["value"], rel=1e-4), v


def test_msst_metrics_are_registered_with_their_direction_and_run_through_the_cli(tmp_path):
    for name in ("msst_sdr", "k_sdr", "msst_si_sdr", "l1_freq", "bleedless", "fullness",
                 "aura_stft", "aura_mrstft", "log_wmse", "l1_snr"):
        assert METRICS[name].higher_is_better and METRICS[name].aggregate == "mean"
    report = tmp_path / "r.html"
    code, out, err = cli("run", "--dataset", "synthetic:1", "--separators", "mix", "--excerpt",
                         "2", "--metrics", "sdr,usdr,msst_sdr,bleedless,fullness,log_wmse",
                         "--report", str(report), "--quiet", "--store", str(tmp_path / "s.sqlite"))
    assert code == 0, err
    # the leaderboard's tables (split to fit 80 columns), their metric columns in order
    heads = [line.split() for line in out.splitlines() if line.startswith("separator")]
    assert [h for head in heads for h in head[3:-1]] == [
        "cSDR", "uSDR", "msst_sdr", "bleedless", "fullness", "log_wmse"]
    html = report.read_text()
    assert "log_wmse" in html and "higher is better" in html


def test_log_wmse_scores_a_silent_target(tmp_path):
    """log-WMSE is defined for digital silence (its reason to exist): MSST scores the silent
    bass of 2.Lithium's first 10 s, and so does the scorer."""
    pytest.importorskip("log_wmse_audio_quality", reason="extra msst is not installed")
    from demixbench.metrics.scoring import score_track

    rng = np.random.default_rng(1)
    refs = {k: rng.standard_normal((2, 44100)) * 0.1 for k in ("drums", "other", "vocals")}
    refs["bass"] = np.zeros((2, 44100))
    ests = {k: (v + rng.standard_normal(v.shape) * 0.01).astype(np.float32) for k, v in refs.items()}
    got = {s.metric: s for s in score_track(refs, ests, ["log_wmse", "usdr"], 44100)
           if s.target == "bass"}
    assert got["usdr"].nan_reason == "silent reference"  # the suite's rule for the others
    assert got["log_wmse"].value == pytest.approx(
        msst.log_wmse(refs["bass"], ests["bass"], 44100, mixture=sum(refs.values())), rel=1e-9)


def test_bleedless_and_fullness_share_mel_spectrograms_and_see_changed_samples(monkeypatch):
    computed = []
    real = msst._compute_mel_db
    monkeypatch.setattr(msst, "_compute_mel_db", lambda x, sr: computed.append(1) or real(x, sr))
    msst._MEL_KEPT.clear()
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((2, 44100)).astype(np.float32)
    est = ref + 0.3 * rng.standard_normal(ref.shape).astype(np.float32)
    pair = msst.bleedless(ref, est), msst.fullness(ref, est)
    assert len(computed) == 2  # one per signal, not one per signal and metric
    est[:, :2000] = 0  # the same array, other samples: a new spectrogram, other values
    changed = msst.bleedless(ref, est), msst.fullness(ref, est)
    assert len(computed) == 3 and changed != pair
    # the values are those of an uncached computation
    d = real(est.astype(np.float64), 44100) - real(ref.astype(np.float64), 44100)
    assert changed[0] == 100 / (1 + float(np.mean(d[d > 0])))
