"""The torch BSS Eval backend (``--bsseval torch``) against the numpy one: the same frames, the
same NaNs, every value within 1e-3 dB. Runs on CPU torch here; a GPU worker uses the same code."""

from __future__ import annotations

import numpy as np
import pytest

from demixbench.datasets.synthetic import synthesize_track
from demixbench.errors import MetricError
from demixbench.metrics import bss_eval_v4
from demixbench.metrics.bsseval.torch_backend import bss_eval_images_v4_torch, torch_device
from demixbench.separators.oracles import IRM1

pytest.importorskip("torch")

SR = 44100
TOL_DB = 1e-3  # what the torch backend promises against the numpy one, on every frame


def _agree(refs, ests, win, hop, backend="torch:cpu"):
    ours = np.stack(bss_eval_v4(refs, ests, win, hop, backend=backend))
    numpy = np.stack(bss_eval_v4(refs, ests, win, hop, backend="numpy"))
    assert ours.shape == numpy.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(numpy))
    np.testing.assert_allclose(ours, numpy, atol=TOL_DB, rtol=0, equal_nan=True)
    return ours


@pytest.fixture(scope="module")
def irm1_case():
    stems = synthesize_track(seed=5, seconds=4.0)
    est = IRM1().separate(sum(stems.values()), SR, references=stems)
    return (np.stack([stems[k].T for k in stems]), np.stack([est[k].T for k in stems]))


@pytest.mark.parametrize("win, hop", [(SR, SR), (SR // 2, SR // 4)])
def test_torch_backend_equals_numpy_on_every_frame(irm1_case, win, hop):
    refs, ests = irm1_case
    values = _agree(refs, ests, win, hop)
    assert np.isfinite(values).all()


def test_torch_backend_keeps_silent_frames_and_other_shapes(irm1_case, rng):
    refs, ests = irm1_case
    refs = refs.copy()
    refs[1, SR:2 * SR] = 0  # one silent second in one reference: NaN for every source there
    values = _agree(refs, ests, SR, SR)
    assert np.isnan(values[:, :, 1]).all() and not np.isnan(values[:, :, 0]).any()
    mono = rng.standard_normal((3, SR // 3, 1))
    _agree(mono, mono[[0, 2, 1]] * 0.3 + mono + 0.01 * rng.standard_normal(mono.shape),
           SR // 10, SR // 10)


def test_singular_references_fall_back_to_the_numpy_path(irm1_case):
    refs, ests = irm1_case
    refs = refs[:1, : SR // 8].copy()  # museval's own solver decides these: keep them small
    ests = ests[:1, : SR // 8]
    refs[0, :, 1] = refs[0, :, 0]  # identical channels: no unique filters
    assert bss_eval_images_v4_torch(refs, ests, SR // 16, SR // 16) is None
    values = np.stack(bss_eval_v4(refs, ests, SR // 16, SR // 16, backend="torch:cpu"))
    numpy = np.stack(bss_eval_v4(refs, ests, SR // 16, SR // 16, backend="numpy"))
    np.testing.assert_allclose(values, numpy, atol=TOL_DB, equal_nan=True)


def test_torch_backend_device_choice_and_errors():
    assert torch_device("torch:cpu") == "cpu"
    import torch

    assert torch_device("torch") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(MetricError, match=r"unknown BSS Eval backend 'torchx'"):
        bss_eval_v4(np.ones((1, 10, 1)), np.ones((1, 10, 1)), backend="torchx")


def test_cli_names_the_backends_on_a_wrong_one(capsys):
    from demixbench.cli import build_parser

    assert build_parser().parse_args(["run", "--bsseval", "torch:cpu"]).bsseval == "torch:cpu"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--bsseval", "cupy"])
    assert "unknown BSS Eval backend 'cupy': use numpy, museval, torch" in capsys.readouterr().err
