"""Stem layouts are scored exactly as museval's ``eval_mus_track`` scores them: vocals and
accompaniment as their own two-source problem, the other targets together, no group of one.
The reference is museval's own function, run on a stand-in for a musdb track (museval's package
imports musdb, which needs ffmpeg; a stub module takes its place for the import)."""

from __future__ import annotations

import sys
import types
from collections import OrderedDict

import numpy as np
import pytest

from demixbench import STEMS
from demixbench.datasets import demo_dataset
from demixbench.datasets.synthetic import synthesize_track
from demixbench.metrics import score_track, with_accompaniment
from demixbench.metrics.scoring import ALONE, group_frames

SR = 44100
BSS = ["sdr", "isr", "sir", "sar"]


@pytest.fixture(scope="module")
def museval_pkg():
    sys.modules.setdefault("musdb", types.ModuleType("musdb"))
    import museval

    return museval


class _Target:
    def __init__(self, audio):
        self.audio = audio.T  # museval: (samples, channels)


class _Track:
    """What eval_mus_track reads of a musdb track: name, rate and the ordered targets."""

    def __init__(self, stems):
        self.name = "t"
        self.rate = SR
        refs = with_accompaniment(stems)
        self.targets = OrderedDict((k, _Target(refs[k])) for k in
                                   ("vocals", "drums", "bass", "other", "accompaniment"))


def _museval_frames(museval, stems, estimates):
    store = museval.eval_mus_track(_Track(stems), {k: v.T for k, v in estimates.items()})
    out = {}
    for target in store.scores["targets"]:
        out[target["name"]] = {m.lower(): np.array([float(f["metrics"][m]) for f in target["frames"]])
                               for m in ("SDR", "ISR", "SIR", "SAR")}
    return out


def _estimates(stems, names, seed=0):
    rng = np.random.default_rng(seed)
    refs = with_accompaniment(stems)
    mix = sum(stems[k] for k in STEMS)
    out = {}
    for k in names:  # the target, some of the mixture, some noise
        noise = 0.02 * rng.standard_normal(mix.shape).astype(np.float32)
        out[k] = (0.8 * refs[k] + 0.1 * mix + noise).astype(np.float32)
    return out


LAYOUTS = {
    "2 stems": ("vocals", "accompaniment"),
    "4 stems": STEMS,
    "4 stems + accompaniment": (*STEMS, "accompaniment"),
}


@pytest.mark.parametrize("layout", [pytest.param(k, marks=pytest.mark.slow) if k == "4 stems" else k
                                    for k in LAYOUTS])
def test_every_frame_as_museval_groups_them(museval_pkg, layout):
    stems = synthesize_track(seed=11, seconds=4.0)
    estimates = _estimates(stems, LAYOUTS[layout])
    # a 4-stem separator is also scored on accompaniment = drums + bass + other (DESIGN.md):
    # museval is given that derived estimate, as a user of museval would give it
    expected = _museval_frames(museval_pkg, stems, with_accompaniment(estimates))
    ours = group_frames(with_accompaniment(stems), with_accompaniment(estimates), BSS, SR, SR, SR)
    scored = {t for t, g in ours.items() if g.frames is not None}
    assert scored == set(expected)
    for target, values in expected.items():
        for m in BSS:  # museval stores values quantized to 1e-5 dB
            np.testing.assert_allclose(ours[target].frames[m], values[m], atol=2e-5, rtol=0,
                                       err_msg=f"{layout}: {target} {m}")
    # the per-track values are the medians of exactly those frames
    rows = {(s.target, s.metric): s for s in score_track(stems, estimates, BSS, SR)}
    for target, values in expected.items():
        for m in BSS:
            assert rows[target, m].value == pytest.approx(np.nanmedian(values[m]), abs=2e-5)
    if layout == "2 stems":  # vocals is not scored as a one-source problem (SIR = +inf)
        assert ours["vocals"].group == ["vocals", "accompaniment"]
        assert np.all(np.isfinite(ours["vocals"].frames["sir"]))


def test_a_lone_target_is_not_scored_as_a_group_of_one():
    stems = synthesize_track(seed=11, seconds=2.0)
    est = _estimates(stems, ("vocals",))
    rows = score_track(stems, est, ["sdr", "sir", "usdr"], SR)
    by = {(s.target, s.metric): s for s in rows}
    assert np.isnan(by["vocals", "sir"].value) and by["vocals", "sir"].nan_reason == ALONE
    assert np.isfinite(by["vocals", "usdr"].value)


def test_two_stem_separator_on_demo_track_matches_museval(museval_pkg):
    track = demo_dataset().tracks[0]
    stems, sr = track.load()
    stems = {k: v[:, : 8 * sr] for k, v in stems.items()}
    estimates = _estimates(stems, ("vocals", "accompaniment"), seed=3)
    expected = _museval_frames(museval_pkg, stems, estimates)
    rows = {(s.target, s.metric): s.value for s in score_track(stems, estimates, BSS, sr)}
    for target in ("vocals", "accompaniment"):
        for m in ("sir", "sar"):
            assert rows[target, m] == pytest.approx(np.nanmedian(expected[target][m]), abs=1e-4)
