"""The optional python-audio-separator backend (extra ``audio-separator``): a model file in a
local folder runs through audio-separator's own code, offline; a folder it has never filled is
a one-line error. The model is MSST's tiny bs_roformer reference checkpoint, listed in a
model list written here the way UVR's lists RoFormers."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from conftest import SHARED

from demixbench.separators import default_registry
from demixbench.weights import MissingWeightsError

pytest.importorskip("audio_separator.separator",
                    reason="python-audio-separator is not installed (extra audio-separator)")
TINY = SHARED / "reference" / "msst-models" / "bs_roformer"
LISTS = ("demucs_download_list", "vr_download_list", "mdx_download_list",
         "mdx_download_vip_list", "mdx23c_download_list", "mdx23c_download_vip_list",
         "roformer_download_list")


@pytest.fixture()
def model_dir(tmp_path):
    if not (TINY / "model.ckpt").is_file():
        pytest.skip(f"MSST's reference checkpoints are not at {TINY}")
    shutil.copy(TINY / "model.ckpt", tmp_path / "tiny_bs_roformer.ckpt")
    shutil.copy(TINY / "config.yaml", tmp_path / "tiny_bs_roformer.yaml")
    lists = {k: {} for k in LISTS}
    lists["roformer_download_list"] = {
        "Roformer Model: tiny": {"tiny_bs_roformer.ckpt": "tiny_bs_roformer.yaml"}}
    (tmp_path / "download_checks.json").write_text(json.dumps(lists))
    return tmp_path


def test_runs_a_local_model_offline(model_dir):
    sep = default_registry().create("audio_separator", model="tiny_bs_roformer.ckpt",
                                    model_dir=str(model_dir))
    assert "vocals" in sep.sources
    mix = sf.read(TINY / "input.wav", dtype="float32", always_2d=True)[0].T
    out = sep.separate(mix, 44100)
    assert out["vocals"].shape == mix.shape and np.any(out["vocals"])
    assert {w["file"] for w in sep.config()["weights"]} == {"tiny_bs_roformer.ckpt",
                                                           "tiny_bs_roformer.yaml"}


def test_a_folder_without_the_model_list_is_one_line(tmp_path):
    with pytest.raises(MissingWeightsError, match=r"download_checks\.json is missing.*downloads "
                                                  r"nothing"):
        default_registry().create("audio_separator", model="x.ckpt", model_dir=str(tmp_path))
