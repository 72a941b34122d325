"""`demixbench train` and the trainable models: shapes, learning, checkpoints, determinism,
resume, one-line errors, and a trained checkpoint run as a separator end to end."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import cli

torch = pytest.importorskip("torch")

from demixbench.errors import DemixbenchError  # noqa: E402
from demixbench.models import architecture  # noqa: E402
from demixbench.models.checkpoint import load_model, save_model  # noqa: E402
from demixbench.models.demucs_lite import parameter_count  # noqa: E402
from demixbench.training.loop import Trainer, TrainOptions, state_path  # noqa: E402
from demixbench.training.loss import separation_loss  # noqa: E402
from demixbench.weights import WeightsError  # noqa: E402

# small enough for a test, the same code as the shipped sizes
TINY = {"unet": {"channels": 4, "lstm_hidden": 16, "n_fft": 512, "hop": 128},
        "demucs_lite": {"channels": 8, "depth": 3},
        "convtasnet": {"N": 16, "L": 16, "B": 16, "H": 16, "X": 3, "R": 1}}



def tiny(name: str):
    torch.manual_seed(0)
    arch = architecture(name)
    return arch.build(arch.config(TINY[name]))


@pytest.mark.parametrize("name", list(TINY))
def test_forward_shapes_and_a_few_steps_lower_the_loss(name):
    model = tiny(name)
    rng = np.random.default_rng(0)
    t = np.arange(11025) / 44100
    stems = np.stack([np.stack([np.sin(2 * np.pi * f * t)] * 2) for f in (110, 220, 440, 880)])
    stems = torch.from_numpy((stems * rng.uniform(0.2, 0.5, (4, 1, 1)))[None].astype(np.float32))
    mix = stems.sum(dim=1)
    assert model(mix).shape == (1, 4, 2, 11025)
    assert model(mix[..., :10001]).shape == (1, 4, 2, 10001)  # any length
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        loss = separation_loss(model(mix), stems, model.sources)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("name", ["demucs_lite", "convtasnet"])
def test_mixture_skip_adds_an_equal_share_of_the_mixture(name):
    arch = architecture(name)
    plain = arch.build(arch.config(TINY[name]))
    skip = arch.build(arch.config({**TINY[name], "mixture_skip": "true"}))
    skip.load_state_dict(plain.state_dict())  # same weights: the skip adds no parameter
    mix = torch.from_numpy(np.random.default_rng(0).normal(0, 0.1, (1, 2, 4000)).astype(
        np.float32))
    with torch.no_grad():
        extra = skip(mix) - plain(mix)
    assert torch.allclose(extra, mix[:, None].expand_as(extra) / 4, atol=1e-6)


def test_default_sizes_fit_a_cpu_and_the_package():
    assert 2.5e6 < parameter_count() < 3.0e6  # the report's ~2.8 M
    for name in TINY:
        model = architecture(name).build(architecture(name).config())
        assert 2 * sum(p.numel() for p in model.parameters()) < 8e6  # float16 under 8 MB


def test_checkpoint_round_trip_in_float32_and_float16(tmp_path):
    model = tiny("demucs_lite").eval()
    x = torch.randn(1, 2, 4000)
    save_model(model, "demucs_lite", tmp_path / "m.pt", {"steps": 3})
    again, pkg = load_model(tmp_path / "m.pt", "demucs_lite")
    assert pkg["training"] == {"steps": 3}
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
        save_model(model, "demucs_lite", tmp_path / "h.pt", half=True)
        half, _ = load_model(tmp_path / "h.pt")
        assert torch.allclose(model(x), half(x), atol=1e-2)


def test_corrupt_or_mismatched_checkpoints_are_one_line_errors(tmp_path):
    from demixbench.separators.learned import DemucsLiteSeparator, UNetSeparator

    save_model(tiny("demucs_lite"), "demucs_lite", tmp_path / "d.pt")
    with pytest.raises(WeightsError, match=r"d\.pt holds a demucs_lite model, not unet"):
        UNetSeparator(weights=str(tmp_path / "d.pt"))
    (tmp_path / "bad.pt").write_bytes(b"\x80\x04garbage")
    with pytest.raises(WeightsError, match=r"bad\.pt: not a torch checkpoint"):
        DemucsLiteSeparator(weights=str(tmp_path / "bad.pt"))
    pkg = torch.load(tmp_path / "d.pt", weights_only=True)
    pkg["config"]["channels"] = 12  # weights of another width
    torch.save(pkg, tmp_path / "w.pt")
    with pytest.raises(WeightsError, match=r"w\.pt: config and weights do not fit"):
        DemucsLiteSeparator(weights=str(tmp_path / "w.pt"))


def _options(tmp_path, name="run", **kw):
    base = dict(model="demucs_lite", datasets=["synthetic:2:train"], out=str(tmp_path / f"{name}.pt"),
                steps=4, batch=2, segment=0.5, epoch_steps=2, valid_seconds=1.0,
                config=TINY["demucs_lite"], threads=1, device="cpu")
    return TrainOptions(**{**base, **kw})


def _weights(path):
    return torch.load(state_path(path), weights_only=True)["model_state"]


def test_same_seed_same_weights_and_resume_continues_exactly(tmp_path):
    whole = Trainer(_options(tmp_path, "whole", snapshots=[2])).run()
    assert whole["step"] == 4 and whole["stopped"] == "4 steps"
    # --snapshot 2 kept the model of step 2 beside the best one (an early checkpoint)
    early = torch.load(tmp_path / "whole.step2.pt", weights_only=True)
    assert early["training"]["steps"] == 2 and early["model"] == "demucs_lite"
    with pytest.raises(DemixbenchError, match=r"--snapshot 3: .* multiple of --epoch-steps \(2\)"):
        Trainer(_options(tmp_path, "odd", snapshots=[3]))
    Trainer(_options(tmp_path, "again")).run()
    for k, v in _weights(tmp_path / "whole.pt").items():
        assert torch.equal(v, _weights(tmp_path / "again.pt")[k]), k
    # interrupted after its first validation, then resumed: the same weights as in one go
    Trainer(_options(tmp_path, "parts", steps=2)).run()
    resumed = Trainer(_options(tmp_path, "parts", resume=True))
    assert resumed.step == 2
    resumed.run()
    for k, v in _weights(tmp_path / "whole.pt").items():
        assert torch.equal(v, _weights(tmp_path / "parts.pt")[k]), k
    log = (tmp_path / "parts.csv").read_text().splitlines()
    assert log[0].startswith("step,epoch,minutes,lr,train_loss") and len(log) == 3
    with pytest.raises(DemixbenchError, match=r"parts\.pt\.state exists .* pass --resume"):
        Trainer(_options(tmp_path, "parts"))
    with pytest.raises(DemixbenchError, match=r"trains demucs_lite with .* use the same model"):
        Trainer(_options(tmp_path, "parts", resume=True, config={**TINY["demucs_lite"],
                                                                  "channels": 6}))


def test_train_then_run_the_checkpoint_end_to_end(tmp_path):
    out = tmp_path / "x.pt"
    code, stdout, err = cli("train", "unet", "--dataset", "synthetic:2:train", "--steps", "5",
                            "--out", str(out), "--segment", "1", "--batch", "2",
                            "--valid-seconds", "1", *[a for k, v in TINY["unet"].items()
                                                      for a in ("--config", f"{k}={v}")])
    assert code == 0, err
    assert "best at step 5" in stdout and out.is_file()
    assert "step 5: train loss" in err
    pkg = torch.load(out, weights_only=True)
    assert pkg["training"]["steps"] == 5 and pkg["training"]["seed"] == 0
    assert pkg["training"]["data"]["train"][0]["dataset"] == "synthetic:2:train"
    card = (tmp_path / "x.md").read_text()  # the model card, from the checkpoint and its log
    assert "- steps: 5 (batch 2, 1.0 s segments" in card and "synthetic:2:train" in card
    assert "the run ended at step 5" in card and "\n| 5 | " in card
    store = tmp_path / "s.sqlite"
    code, stdout, err = cli("run", "--dataset", "synthetic:1", "--excerpt", "2", "--separators",
                            "unet", "--weights", str(out), "--metrics", "usdr", "--store",
                            str(store), "--quiet", "--no-report")
    assert code == 0, err
    assert "unet" in stdout and "1 of 1 units computed" in stdout


def test_train_errors_are_one_line(tmp_path):
    code, _, err = cli("train", "wavenet", "--dataset", "synthetic:1:train", "--steps", "1",
                       "--out", str(tmp_path / "x.pt"))
    assert code == 2 and "no trainable model 'wavenet'; choose one of unet" in err
    code, _, err = cli("train", "unet", "--dataset", "synthetic:1:train", "--out",
                       str(tmp_path / "x.pt"))
    assert code == 2 and "give a budget: --steps N or --minutes M" in err
    code, _, err = cli("train", "unet", "--dataset", "synthetic:1:train", "--steps", "1",
                       "--config", "width=3", "--out", str(tmp_path / "x.pt"))
    assert code == 2 and "unet: no configuration key 'width'" in err


def test_an_unwritable_out_or_an_empty_state_is_found_before_training(tmp_path):
    """Found before the first step (an unwritable --out used to surface after the first
    validation, ~12 minutes in; a 0-byte state raised an IndexError)."""
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        args = ["train", "unet", "--dataset", "synthetic:1:train", "--steps", "1", "--config",
                "channels=4"]
        if os.access(locked, os.W_OK):  # root writes anywhere: a file where the folder should be
            blocker = tmp_path / "file"
            blocker.write_text("")
            out = blocker / "x.pt"
        else:
            out = locked / "x.pt"
        code, _, err = cli(*args, "--out", str(out))
        assert code == 2 and err.strip().startswith(f"demixbench: error: --out {out}: cannot "
                                                    "write there"), err
        assert len(err.strip().splitlines()) == 1
        code, _, err = cli(*args, "--out", str(tmp_path))
        assert code == 2 and "is a folder; give a file name" in err
    finally:
        locked.chmod(0o700)
    state_path(tmp_path / "y.pt").write_bytes(b"")
    code, _, err = cli(*args, "--out", str(tmp_path / "y.pt"), "--resume")
    assert code == 2 and "y.pt.state is empty (0 bytes" in err and len(err.strip().splitlines()) == 1


def test_the_loss_prefers_the_truth_and_leaves_silent_references_to_l1():
    rng = np.random.default_rng(1)
    ref = torch.from_numpy(rng.standard_normal((2, 4, 2, 8192)).astype(np.float32)) * 0.1
    ref[:, 1] = 0  # a song without bass
    sources = ["drums", "bass", "other", "vocals"]
    exact = ref.clone().requires_grad_(True)
    truth = separation_loss(exact, ref, sources)
    assert float(truth.detach()) == pytest.approx(0.0, abs=1e-6)
    truth.backward()  # finite gradients at the exact answer and on silent sources (no sqrt(0))
    assert torch.isfinite(exact.grad).all()
    leak = ref.clone()
    leak[:, 1] = 0.01 * ref[:, 0]  # a little drums in the silent bass: L1 only, finite
    seed, l1 = separation_loss(leak, ref, sources), separation_loss(leak, ref, sources, "l1")
    assert 0 < float(l1) < 1e-3
    assert float(seed) == pytest.approx(0.85 * float(l1), rel=1e-5)  # no STFT term on silence
    # L1 alone: the mean absolute error, drums and bass weighted 1.2 of 4.4
    assert float(l1) == pytest.approx(1.2 / 4.4 * float((leak - ref)[:, 1].abs().mean()),
                                      rel=1e-5)


def test_the_seed_loss_ranks_a_share_of_the_mixture_above_silence():
    """Per-example spectral convergence made silence the best answer on remixed batches with a
    quiet or silent stem (measured on the CC0 training songs); the batch-level definition
    does not."""
    from demixbench.datasets import open_dataset

    stems, _ = open_dataset("synthetic:1:train").tracks[0].load()
    ref = torch.from_numpy(np.stack([np.stack([stems[k][:, i * 8192:(i + 1) * 8192]
                                               for k in ("drums", "bass", "other", "vocals")])
                                     for i in range(4)]))
    ref[0, 1] = 0  # a silent bass
    ref[1, 3] *= 1e-3  # a very quiet voice
    mix = ref.sum(dim=1, keepdim=True).expand_as(ref)
    sources = ["drums", "bass", "other", "vocals"]
    silence = float(separation_loss(torch.zeros_like(ref), ref, sources))
    for share in (0.25, 0.5):
        assert float(separation_loss(share * mix, ref, sources)) < silence
