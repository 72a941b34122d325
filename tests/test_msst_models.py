"""MSST-format checkpoints: MSST's own tiny reference checkpoints (``../shared/reference/
msst-models``, random weights written by MSST's code, with MSST's ``demix`` output) load
strictly into the separators and give MSST's output — the test that the format, the network
and the inference protocol (batched window quirk, zero_dc) are right. Tolerance: 1e-4 of the
reference output's peak. float32 kernels differ between CPUs: on one machine the roformers
reproduced MSST's output exactly (max abs difference 0.0) and HT Demucs within 7.5e-7 of the
peak; on an AVX-512 AMD EPYC the roformers differ by up to 1.1e-5 (bs_roformer) and 1.9e-5
(mel_band_roformer) of the peak (RMS 6e-6 of the output's), with 1 or 2 threads alike; MDX23C
and SCNet (this project's own networks) within 5.4e-7 and 4.3e-7 of the peak on every stem. A
protocol error is far larger: leaving out MSST's zero_dc moves the output by 1.2e-2 of the
peak."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from demixbench.errors import SeparatorError
from demixbench.separators import default_registry
from demixbench.weights import WeightsError

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "msst-models"
CASES = [("bs_roformer", "bs_roformer"), ("mel_band_roformer", "mel_band_roformer"),
         ("msst_htdemucs", "htdemucs"), ("mdx23c", "mdx23c"), ("scnet", "scnet")]
TOLERANCE = 1e-4  # of the reference output's peak (see above)

pytest.importorskip("bs_roformer", reason="the roformers need bs-roformer==0.3.10")


def _reference(model_type: str) -> Path:
    folder = REFERENCE / model_type
    if not (folder / "model.ckpt").is_file():
        pytest.skip(f"MSST reference checkpoints not found at {folder}")
    return folder


@pytest.mark.parametrize("name,model_type", CASES)
def test_reproduces_msst_demix(name, model_type):
    folder = _reference(model_type)
    # (MSST's demix output; scnet's config normalizes in inference.py, outside demix: below)
    raw = {"normalize": False} if model_type == "scnet" else {}
    sep = default_registry().create(name, weights=str(folder / "model.ckpt"),
                                    config=str(folder / "config.yaml"), **raw)
    mix = sf.read(folder / "input.wav", dtype="float32", always_2d=True)[0].T
    out = sep.separate(mix, 44100)
    compared = 0
    for stem, est in out.items():
        ref_file = folder / f"{stem}.npy"
        if ref_file.is_file():
            ref = np.load(ref_file)
            np.testing.assert_allclose(est, ref, rtol=0, atol=TOLERANCE * np.abs(ref).max(),
                                       err_msg=stem)
            compared += 1
    assert compared == len(list(folder.glob("*.npy"))) == (1 if "roformer" in name else 4)
    if "accompaniment" in out:  # MSST's --extract_instrumental: the mixture minus the target
        np.testing.assert_allclose(out["accompaniment"], mix - out["vocals"], atol=1e-7)


def test_zero_dc_is_what_msst_does():
    """Without MSST's zero_dc the roformer's output is not MSST's (the hook is not a no-op)."""
    folder = _reference("bs_roformer")
    from demixbench.models.msst.config import load_config
    from demixbench.models.msst.demix import demix
    from demixbench.models.msst.networks import build, load_strict

    config = load_config(folder / "config.yaml")
    config["model"]["zero_dc"] = False
    model = build("bs_roformer", config)
    load_strict(model, folder / "model.ckpt", "bs_roformer")
    mix = sf.read(folder / "input.wav", dtype="float32", always_2d=True)[0].T
    ref = np.load(folder / "vocals.npy")
    diff = np.abs(demix(model, config, mix)[0] - ref).max()
    assert diff > 10 * TOLERANCE * np.abs(ref).max()


def test_batch_size_is_part_of_the_identity():
    folder = _reference("htdemucs")
    reg = default_registry()
    a = reg.create("msst_htdemucs", weights=str(folder / "model.ckpt"),
                   config=str(folder / "config.yaml"))
    b = reg.create("msst_htdemucs", weights=str(folder / "model.ckpt"),
                   config=str(folder / "config.yaml"), batch_size=1)
    assert a.config_hash() != b.config_hash()
    assert {w["file"] for w in a.config()["weights"]} == {"model.ckpt", "config.yaml"}


def test_mismatched_checkpoint_names_the_keys():
    bs, mel = _reference("bs_roformer"), _reference("mel_band_roformer")
    with pytest.raises(WeightsError, match=r"does not fit the bs_roformer network.*missing: "
                                           r"final_norm\.gamma.*pass the config"):
        default_registry().create("bs_roformer", weights=str(mel / "model.ckpt"),
                                  config=str(bs / "config.yaml"))


def test_msst_only_key_the_package_cannot_build(tmp_path):
    folder = _reference("bs_roformer")
    text = (folder / "config.yaml").read_text().replace("mlp_expansion_factor: 4",
                                                        "mlp_expansion_factor: 2")
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(SeparatorError, match=r"mlp_expansion_factor=2 \(bs-roformer 0\.3\.10 "
                                             r"has 4\)"):
        default_registry().create("bs_roformer", weights=str(folder / "model.ckpt"),
                                  config=str(tmp_path / "config.yaml"))


def test_missing_config_is_one_line(tmp_path):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"")
    with pytest.raises(SeparatorError, match=r"no config for .*--param bs_roformer\.config="):
        default_registry().create("bs_roformer", weights=str(ckpt))


@pytest.mark.parametrize("name,ckpt", [
    ("bs_roformer", "model_bs_roformer_ep_317_sdr_12.9755.ckpt"),
    ("mel_band_roformer", "model_mel_band_roformer_ep_3005_sdr_11.4360.ckpt"),
    ("mdx23c", "model_vocals_mdx23c_sdr_10.17.ckpt"),
    ("scnet", "model_scnet_sdr_9.3244.ckpt")])
def test_no_published_default_offline(monkeypatch, tmp_path, name, ckpt):
    monkeypatch.setenv("DEMIXBENCH_CACHE", str(tmp_path))
    from demixbench.weights import MissingWeightsError

    with pytest.raises(MissingWeightsError, match=rf"{re.escape(ckpt)}.*demixbench fetch {name}"):
        default_registry().create(name)


@pytest.mark.parametrize("model_type", ["mdx23c", "scnet"])
def test_published_default_is_loaded_from_the_cache(monkeypatch, tmp_path, model_type):
    """With no --weights the separator runs the published checkpoint and config under their
    published names in the cache (here MSST's reference files put there), and its identity
    names those files."""
    import shutil

    from demixbench.weights import manifest

    folder = _reference(model_type)
    ckpt, config = manifest(model_type).files
    shutil.copy(folder / "model.ckpt", tmp_path / ckpt.filename)
    shutil.copy(folder / "config.yaml", tmp_path / config.filename)
    monkeypatch.setenv("DEMIXBENCH_CACHE", str(tmp_path))
    sep = default_registry().create(model_type, normalize=False)
    assert sep.params()["files"] == [ckpt.filename, config.filename]
    mix = sf.read(folder / "input.wav", dtype="float32", always_2d=True)[0].T
    out = sep.separate(mix, 44100)
    ref = np.load(folder / "vocals.npy")
    np.testing.assert_allclose(out["vocals"], ref, rtol=0, atol=TOLERANCE * np.abs(ref).max())


def test_fetch_records_the_checksum_and_checks_it(monkeypatch, tmp_path):
    """Files with no published checksum: the first fetch records their SHA-256, a later change
    of the file is refused; an unreachable server is a one-line error naming the URL."""
    from demixbench import weights

    src = tmp_path / "src"
    src.mkdir()
    (src / "m.ckpt").write_bytes(b"weights")
    (src / "m.yaml").write_text("audio: {}\n")
    fake = weights.ModelWeights("bs_roformer", tuple(
        weights.WeightFile(n, (src / n).as_uri(), None) for n in ("m.ckpt", "m.yaml")))
    monkeypatch.setattr(weights, "manifest", lambda name: fake)
    dest = tmp_path / "cache"
    said = []
    paths = weights.fetch("bs_roformer", dest, progress=said.append)
    assert [p.name for p in paths] == ["m.ckpt", "m.yaml"]
    assert any("SHA-256" in s and "recorded" in s for s in said)
    weights.locate("bs_roformer", dest)  # the recorded digest matches
    (dest / "m.ckpt").write_bytes(b"other weights")
    with pytest.raises(WeightsError, match="recorded when it was fetched"):
        weights.locate("bs_roformer", dest)
    gone = weights.ModelWeights("bs_roformer", (weights.WeightFile(
        "x.ckpt", "http://127.0.0.1:9/x.ckpt", None),))
    monkeypatch.setattr(weights, "manifest", lambda name: gone)
    with pytest.raises(WeightsError, match=r"could not download http://127\.0\.0\.1:9/x\.ckpt"):
        weights.fetch("bs_roformer", dest, timeout=2)


def test_mdx23c_builds_only_the_configuration_checked_against_msst(tmp_path):
    folder = _reference("mdx23c")
    text = (folder / "config.yaml").read_text().replace("norm: InstanceNorm", "norm: BatchNorm")
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(SeparatorError, match=r"mdx23c: only the configuration checked against "
                                             r"MSST's output is built here: norm='BatchNorm' "
                                             r"\(verified: 'InstanceNorm'\)"):
        default_registry().create("mdx23c", weights=str(folder / "model.ckpt"),
                                  config=str(tmp_path / "config.yaml"))
    # a checkpoint of another size is refused naming its keys
    text = (folder / "config.yaml").read_text().replace("growth: 16", "growth: 8")
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(WeightsError, match=r"does not fit the mdx23c network.*shape mismatch: "
                                           r"encoder_blocks\.0\.downscale\.conv\.2\.weight"):
        default_registry().create("mdx23c", weights=str(folder / "model.ckpt"),
                                  config=str(tmp_path / "config.yaml"))


def test_scnet_with_its_configs_normalize_gives_msst_inference_py_output():
    """scnet's config sets inference.normalize: MSST's inference.py standardises the mixture by
    its mono mean and std before demix and undoes it after (its output differs from the raw
    demix by up to ~1.8); the reference holds samples 110000-132050 of that pipeline."""
    folder = _reference("scnet")
    sep = default_registry().create("scnet", weights=str(folder / "model.ckpt"),
                                    config=str(folder / "config.yaml"))
    assert sep.params()["normalize"] is True
    mix = sf.read(folder / "input.wav", dtype="float32", always_2d=True)[0].T
    out = sep.separate(mix, 44100)
    for stem in ("drums", "bass", "other", "vocals"):
        ref = np.load(folder / "inference_py_normalize" / f"{stem}.npy")
        got = out[stem][:, 110000:132050]
        np.testing.assert_allclose(got, ref, rtol=0, atol=TOLERANCE * np.abs(ref).max(),
                                   err_msg=stem)
        raw = np.load(folder / f"{stem}.npy")[:, 110000:132050]
        assert np.abs(raw - ref).max() > 100 * TOLERANCE * np.abs(ref).max()  # not a no-op
