"""open-unmix through the openunmix package: strict loading of the published per-target files,
the Wiener step as a recorded parameter, and the package's own ``umxhq`` as the reference.

openunmix imports torchaudio, which does not load beside this project's CPU torch 2.13, so in
the default test venv only the error tests run; the rest run where openunmix imports (checked in
a venv with torch 2.9.1 and torchaudio 2.9.1, see the README)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from conftest import cli
from generated_weights import _openunmix

from demixbench.errors import SeparatorError
from demixbench.separators import default_registry
from demixbench.weights import WeightsError


def _openunmix_loads() -> tuple[bool, str]:
    from demixbench.separators.umx import openunmix_package

    try:
        openunmix_package()
    except SeparatorError as exc:
        return False, str(exc)
    return True, ""


LOADS, WHY = _openunmix_loads()
needs_openunmix = pytest.mark.skipif(not LOADS, reason=f"openunmix does not import here: {WHY}")


def test_without_the_package_each_model_says_how_to_install_it(monkeypatch):
    for name in [n for n in list(sys.modules) if n == "openunmix" or n.startswith("openunmix.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "openunmix", None)
    registry = default_registry()
    for name in ("umxhq", "umx", "umxl"):
        ok, why = registry.get(name).availability()
        assert not ok and "pip install 'demixbench[openunmix]'" in why
        with pytest.raises(SeparatorError, match=r"needs the openunmix package: pip install"):
            registry.create(name)


@pytest.mark.skipif(importlib.util.find_spec("openunmix") is None,
                    reason="openunmix is not installed here")
def test_a_torchaudio_that_does_not_load_is_named_with_the_fix(monkeypatch):
    for name in [n for n in list(sys.modules) if n.split(".")[0] in ("openunmix", "torchaudio")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torchaudio", None)
    with pytest.raises(SeparatorError, match=r"imports torchaudio, which does not load beside "
                                             r"torch .*install torch and torchaudio of one release"):
        default_registry().create("umxhq")


@pytest.fixture(scope="module")
def umxhq_files(tmp_path_factory):
    if not LOADS:
        pytest.skip(f"openunmix does not import here: {WHY}")
    folder = tmp_path_factory.mktemp("umxhq")
    _openunmix("umxhq", folder)
    return folder


@pytest.fixture(scope="module")
def music():
    """4 s of the demo song 2.Lithium (CC0), stereo 44.1 kHz."""
    from conftest import SHARED

    from demixbench.audio import load_audio

    audio, sr = load_audio(SHARED / "data" / "cc0-multitrack" / "2.Lithium" / "mixture.flac")
    assert sr == 44100
    return audio[:, 5 * sr: 9 * sr].astype(np.float32)


@needs_openunmix
@pytest.mark.parametrize("niter", [0, 1, 2])
def test_estimates_are_the_packages_own_umxhq(umxhq_files, music, niter):
    import openunmix
    import torch

    ours = default_registry().create("umxhq", weights=str(umxhq_files), niter=niter)
    theirs = openunmix.umxhq(pretrained=False, niter=niter)  # the package's own separator
    for target, net in theirs.target_models.items():
        path = next(umxhq_files.glob(f"{target}-*.pth"))
        net.load_state_dict(torch.load(path, weights_only=True), strict=False)  # as it loads
    theirs.freeze()
    with torch.no_grad():
        ref = theirs(torch.from_numpy(music)[None])[0].numpy()
    out = ours.separate(music, 44100)
    for i, target in enumerate(theirs.target_models):
        np.testing.assert_allclose(out[target], ref[i], rtol=0, atol=1e-6 * np.abs(ref[i]).max())
    assert np.abs(out["vocals"]).max() > 1e-3  # the random networks do pass audio through


@needs_openunmix
def test_the_wiener_step_is_in_the_identity(umxhq_files, music):
    registry = default_registry()
    plain = registry.create("umxhq", weights=str(umxhq_files), niter=0)
    em = registry.create("umxhq", weights=str(umxhq_files), niter=1)
    soft = registry.create("umxhq", weights=str(umxhq_files), niter=0, softmask=True)
    assert len({plain.config_hash(), em.config_hash(), soft.config_hash()}) == 3
    assert em.config()["params"]["wiener"] == {"niter": 1, "softmask": False,
                                              "wiener_win_len": 300}
    a, b = plain.separate(music, 44100), em.separate(music, 44100)
    assert np.abs(a["vocals"] - b["vocals"]).max() > 1e-4 * np.abs(a["vocals"]).max()


@needs_openunmix
def test_a_wrong_file_is_refused_naming_the_first_bad_keys(tmp_path):
    import torch

    _openunmix("umxhq", tmp_path, legacy=False)
    path = tmp_path / "vocals-b62c91ce.pth"
    state = torch.load(path, weights_only=True)
    del state["fc1.weight"]
    state["head.weight"] = torch.zeros(3)
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"vocals-b62c91ce.pth: not an open-unmix vocals network"
                                           r".*unexpected keys \['head.weight'\], "
                                           r"missing \['fc1.weight'\]"):
        default_registry().create("umxhq", weights=str(tmp_path))


@needs_openunmix
def test_umxl_files_are_not_umxhq(tmp_path):
    _openunmix("umxl", tmp_path)
    from demixbench.weights import manifest

    umxhq_names = [wf.filename for wf in manifest("umxhq").files]
    for f in tmp_path.iterdir():  # umxl's networks under umxhq's file names
        stem = f.name.split("-")[0]
        f.rename(tmp_path / next(n for n in umxhq_names if n.startswith(f"{stem}-")))
    with pytest.raises(WeightsError, match=r"has shape \(1024, 2974\), this network needs "
                                           r"\(512, 2974\)"):
        default_registry().create("umxhq", weights=str(tmp_path))


@pytest.mark.parametrize("name, size", [("umxhq", "142 MB"), ("umxl", "452 MB")])
def test_fetch_names_the_published_files_and_offline_is_one_line(monkeypatch, tmp_path, name,
                                                                 size):
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    code, out, err = cli("fetch", name, "--dest", str(tmp_path))
    assert code != 0
    assert "https://zenodo.org/records/" in out + err and size in out + err
    assert "could not download" in err and "Traceback" not in err


def test_a_default_run_names_the_three_models_in_one_skip_notice():
    from demixbench.runs.plan import add_skip

    why = "open-unmix needs the openunmix package"
    notices = []
    add_skip(notices, "umx", why)
    notices.append("warning: something else")
    for name, reason in [("umxhq", why), ("mwf", "another reason"), ("umxl", why),
                         ("a name: with a colon", why)]:
        add_skip(notices, name, reason)
    assert [str(n) for n in notices] == [
        f"skipped umx, umxhq, umxl, a name: with a colon: {why}", "warning: something else",
        "skipped mwf: another reason"]
