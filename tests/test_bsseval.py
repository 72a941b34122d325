"""The project's BSS Eval v4 against museval (differential) and against the original MATLAB
toolbox's numbers in mir_eval's reference vectors (through the framewise-filter variant)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED

from demixbench.datasets.synthetic import synthesize_track
from demixbench.errors import MetricError
from demixbench.metrics import bss_eval_v4
from demixbench.metrics.bsseval_numpy import bss_eval_images_v3, correlations, framing
from demixbench.metrics.reference_vectors import load_images_case
from demixbench.separators.oracles import IRM1

SR = 44100
TOL_DB = 0.01  # the agreement the suite promises; measured differences are ~1e-7 dB
VECTORS = SHARED / "data" / "metric-vectors" / "mir_eval-separation"


def _both(refs, ests, win, hop):
    ours = np.stack(bss_eval_v4(refs, ests, win, hop, backend="numpy"))
    theirs = np.stack(bss_eval_v4(refs, ests, win, hop, backend="museval"))
    return ours, theirs


def _assert_agree(ours, theirs):
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, atol=TOL_DB, rtol=0, equal_nan=True)


@pytest.fixture(scope="module")
def irm1_case():
    stems = synthesize_track(seed=11, seconds=3.0)
    mix = sum(stems.values())
    est = IRM1().separate(mix, SR, references=stems)
    keys = list(stems)
    return (np.stack([stems[k].T for k in keys]), np.stack([est[k].T for k in keys]))


@pytest.mark.parametrize("win, hop", [(SR, SR), (SR // 2, SR // 4), (10 * SR, 10 * SR)])
def test_agrees_with_museval_on_every_frame(irm1_case, win, hop):
    refs, ests = irm1_case
    ours, theirs = _both(refs, ests, win, hop)
    assert ours.shape[-1] == len(framing(refs.shape[1], win, hop)[0])
    _assert_agree(ours, theirs)


@pytest.mark.parametrize("nchan", [1, 3])
def test_agrees_on_other_channel_counts_and_unequal_lengths(nchan, rng):
    n = SR // 4
    refs = rng.standard_normal((3, n, nchan))
    mixing = np.eye(3) + 0.2 * rng.standard_normal((3, 3))
    ests = np.einsum("ij,jnc->inc", mixing, refs) + 0.05 * rng.standard_normal(refs.shape)
    for cut in (ests[:, : n - 777], np.concatenate([ests, ests[:, :500]], axis=1)):
        ours, theirs = _both(refs, cut, SR // 20, SR // 40)
        _assert_agree(ours, theirs)


def test_silent_frames_are_nan_for_every_source(irm1_case):
    refs, ests = irm1_case
    refs = refs.copy()
    refs[1, SR: 2 * SR] = 0  # bass silent in the second second
    ours, theirs = _both(refs, ests, SR, SR)
    assert np.all(np.isnan(ours[:, :, 1])) and not np.any(np.isnan(ours[:, :, 0]))
    _assert_agree(ours, theirs)


def test_whole_signal_silence_raises_like_museval(irm1_case):
    refs, ests = irm1_case
    silent = refs.copy()
    silent[2] = 0
    with pytest.raises(MetricError, match=r"reference\(s\) \[2\] are silent over the whole signal"):
        bss_eval_v4(silent, ests)
    with pytest.raises(MetricError, match=r"estimate\(s\) \[0\] are silent"):
        bss_eval_v4(refs, np.concatenate([0 * ests[:1], ests[1:]]))


def test_unknown_backend():
    with pytest.raises(MetricError, match="unknown BSS Eval backend 'fast'"):
        bss_eval_v4(np.ones((1, 10, 1)), np.ones((1, 10, 1)), backend="fast")


def test_correlations_match_direct_sums(rng):
    refs = rng.standard_normal((2, 3000, 2))
    ests = rng.standard_normal((2, 3000, 2))
    r = correlations(refs, ests, 64)
    a = refs.transpose(0, 2, 1).reshape(4, -1)
    b = np.concatenate([a, ests.transpose(0, 2, 1).reshape(4, -1)])
    for m, k, lag in [(0, 0, 0), (1, 3, 5), (3, 6, 63), (2, 7, 17)]:
        expected = np.dot(a[m, : 3000 - lag], b[k, lag:])
        assert r[m, k, lag] == pytest.approx(expected, rel=1e-10, abs=1e-9)


def _vector_case(case: str):
    return load_images_case(VECTORS, case)


# The image references copy one mono file to every channel, so the Gram system is exactly
# singular: the filters are not unique, and every implementation's frame values carry round-off
# from its solver. Cases 01, 03 and 09 still agree to 1e-3 dB and run in seconds; 05 and 07
# agree too but take minutes (least-squares solves per frame) and are checked by
# benchmarks/bsseval_agreement.py; 02 differs from MATLAB by up to 0.04 dB in SIR/SAR, 08 (four
# identical channels) needs minutes of SVDs, and 06 ships stereo files: see that script.
@pytest.mark.skipif(not VECTORS.is_dir(), reason="shared metric vectors not present")
@pytest.mark.parametrize("case", ["01", "03", "09"])
def test_framewise_images_match_the_matlab_toolbox(case):
    block, refs, ests = _vector_case(case)
    ours, _ = bss_eval_images_v3(refs, ests, block["win"], block["hop"])
    names = ["Source to Distortion", "Image to Spatial", "Source to Interference",
             "Source to Artifact"]
    for i, name in enumerate(names):
        np.testing.assert_allclose(ours[i], np.array(block[name], dtype=float), atol=1e-3,
                                   equal_nan=True, err_msg=f"{case} {name}")


@pytest.mark.skipif(not VECTORS.is_dir(), reason="shared metric vectors not present")
@pytest.mark.parametrize("case", ["01", "03", "07", "09"])
def test_v4_matches_museval_on_the_reference_vectors(case):
    block, refs, ests = _vector_case(case)
    ours, theirs = _both(refs, ests, block["win"], block["hop"])
    _assert_agree(ours, theirs)
