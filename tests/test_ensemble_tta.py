"""Ensembles and test-time augmentation as strategies: MSST's combination rules, demucs's
shifts and MSST's flips undone exactly, the members in the identity, and both end to end
through the CLI into the report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import cli

from demixbench.errors import DemixbenchError
from demixbench.separators import Separator
from demixbench.separators.baselines import MixtureSeparator
from demixbench.strategies import build_strategy
from demixbench.strategies.ensemble import combine

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 44100)).astype(np.float32) * 0.1


class Abs(Separator):
    """Not linear and not channel-symmetric: abs of the left channel, the right one zeroed."""
    name = "abs_left"
    sources = ("vocals",)
    sample_rate = None

    def _separate(self, mixture, sample_rate, references):
        out = np.abs(mixture)
        out[1:] = 0
        return {"vocals": out}


def test_weighted_average_and_median_of_waveforms():
    a, b, c = X, 0.5 * X, -X
    np.testing.assert_allclose(combine([a, b], "avg_wave", [3, 1]),
                               np.average([a, b], axis=0, weights=[3, 1]), atol=1e-7)
    np.testing.assert_allclose(combine([a, b, c], "median_wave", [1, 1, 1]), b, atol=1e-7)


def test_min_and_max_pick_by_magnitude():
    a, b = X, 0.5 * X
    np.testing.assert_allclose(combine([b, a], "max_wave", [1, 1]), a, atol=1e-7)
    np.testing.assert_allclose(combine([b, a], "min_wave", [1, 1]), b, atol=1e-7)
    # every STFT bin of a is larger than b's: max_fft is a, min_fft is b (after the round trip)
    np.testing.assert_allclose(combine([b, a], "max_fft", [1, 1]), a, atol=1e-5)
    np.testing.assert_allclose(combine([b, a], "min_fft", [1, 1]), b, atol=1e-5)


def test_average_of_stfts_is_the_average_of_waveforms():
    """The STFT is linear: avg_fft equals avg_wave up to the STFT round trip."""
    a, b = X, RNG.standard_normal(X.shape).astype(np.float32) * 0.1
    np.testing.assert_allclose(combine([a, b], "avg_fft", [1, 2]),
                               combine([a, b], "avg_wave", [1, 2]), atol=1e-5)


def test_flips_are_undone():
    """Three passes, each undone: plain gives (|L|, 0); channels swapped gives (|R|, 0), swapped
    back (0, |R|); polarity inverted gives (|L|, 0), inverted back (-|L|, 0). Their mean:
    (0, |R| / 3)."""
    tta = build_strategy("tta:flip=true", Abs())
    out = tta.separate(X, 44100)["vocals"]
    np.testing.assert_allclose(out[0], 0, atol=1e-7)
    np.testing.assert_allclose(out[1], np.abs(X[1]) / 3, atol=1e-7)


def test_shifts_leave_a_time_invariant_separator_unchanged():
    tta = build_strategy("tta:shifts=3,flip=true", MixtureSeparator())
    out = tta.separate(X, 44100)
    np.testing.assert_allclose(out["vocals"], X, atol=1e-7)
    a = build_strategy("tta:shifts=3", Abs()).separate(X, 44100)
    b = build_strategy("tta:shifts=3", Abs()).separate(X, 44100)
    np.testing.assert_array_equal(a["vocals"], b["vocals"])  # seeded offsets: a run repeats


def test_members_are_in_the_identity():
    one = build_strategy("ensemble:separators=hpss_repet,method=avg_wave", MixtureSeparator())
    two = build_strategy("ensemble:separators=hpss_repet,method=max_fft", MixtureSeparator())
    three = build_strategy("ensemble:separators=hpss_nmf,method=avg_wave", MixtureSeparator())
    assert len({one.strategy_hash(), two.strategy_hash(), three.strategy_hash()}) == 3
    assert one.strategy_config()["members"][0]["name"] == "hpss_repet"
    assert one.sources == ("drums", "bass", "other", "vocals")  # what both members return


@pytest.mark.parametrize("spec,match", [
    ("ensemble:method=avg_wave", "name the other members"),
    ("ensemble:separators=hpss_repet,weights=1/2/3", r"3 weights for 2 members"),
    ("ensemble:separators=irm1", "oracle members"),
    ("ensemble:separators=hpss_repet,method=mean", "expected one of avg_wave"),
    ("tta:seed=1", "set shifts=N"),
    ("tta:shifts=-1", "shifts must be an integer in"),
])
def test_bad_specs_are_one_line_errors(spec, match):
    with pytest.raises(DemixbenchError, match=match):
        build_strategy(spec, MixtureSeparator())


@pytest.mark.slow
def test_ensemble_and_tta_end_to_end(tmp_path):
    store, report = tmp_path / "s.sqlite", tmp_path / "r.html"
    code, out, err = cli("run", "--dataset", "synthetic:1", "--separators", "unet",
                         "--strategy", "none", "--strategy",
                         "ensemble:separators=demucs_lite,method=avg_fft",
                         "--strategy", "tta:shifts=2,flip=true", "--metrics", "usdr",
                         "--store", str(store), "--report", str(report))
    assert code == 0, err
    assert "ensemble" in out and "tta" in out
    code, rows, err = cli("results", "--store", str(store), "--format", "json")
    strategies = {r["strategy"] for r in json.loads(rows)}
    assert strategies == {"none", "ensemble", "tta"}
    html = report.read_text()
    assert "ensemble" in html and "tta" in html
