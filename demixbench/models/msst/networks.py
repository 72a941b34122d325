"""The networks MSST configs describe, built from the packages that implement them.

- ``bs_roformer`` / ``mel_band_roformer``: ``bs-roformer==0.3.10``, the architecture's
  reference implementation on the package index and the version whose layout MSST's roformer
  checkpoints load into strictly (0.4/0.5 lack their rotary-embedding keys, 0.6+ changed the
  layout). MSST's copy differs in one step of the forward, on by default since 2025-09:
  ``zero_dc`` zeroes STFT bin 0 of the masked spectrogram before the inverse STFT. Here that is a
  forward hook on each mask estimator that zeroes the mask of bin 0 — the same spectrogram
  reaches the package's iSTFT, so the output is MSST's. MSST-only config keys are accepted
  when their value is the one the package's fixed structure has, and refused otherwise.
- ``htdemucs``: demucs 4.1.0's own ``HTDemucs`` (MSST's copy builds on demucs's modules and
  has the same state-dict layout).
- ``mdx23c`` and ``scnet``: :mod:`.tfc_tdf` and :mod:`.scnet`, written here (no package
  implements them) and checked against MSST's own reference checkpoints and outputs.

:func:`load_strict` loads a state dict the way MSST's inference does (``['state']``,
``['state_dict']`` or ``['model_state_dict']`` unwrapped, strict), with an error naming the
first keys that do not fit.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import Any

from ...errors import SeparatorError
from ...weights import WeightsError, load_torch
from .config import section

ROFORMERS = ("bs_roformer", "mel_band_roformer")
# MSST-only roformer keys and the value bs-roformer 0.3.10's structure corresponds to; a
# key whose value is None here changes nothing at inference (training-time memory saving)
MSST_ONLY = {"linear_transformer_depth": 0, "mlp_expansion_factor": 4, "skip_connection": False,
             "sage_attention": False, "use_torch_checkpoint": None, "zero_dc": None}


def _package_class(model_type: str):
    try:
        from bs_roformer import BSRoformer, MelBandRoformer
    except ImportError as exc:
        raise SeparatorError(f"{model_type} needs the bs-roformer package ({exc}): "
                             "pip install 'demixbench[roformer]' (bs-roformer==0.3.10)") from None
    return BSRoformer if model_type == "bs_roformer" else MelBandRoformer


def roformer_kwargs(model_type: str, config: dict) -> tuple[dict[str, Any], bool]:
    """The package constructor's keyword arguments from the config's ``model`` section, and
    whether MSST's ``zero_dc`` is on. MSST-only keys with another value are refused."""
    cls = _package_class(model_type)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    kwargs, bad = {}, []
    for key, value in section(config, "model").items():
        if key in accepted:
            kwargs[key] = tuple(value) if isinstance(value, list) else value
        elif key in MSST_ONLY:
            want = MSST_ONLY[key]
            if want is not None and value != want:
                bad.append(f"{key}={value!r} (bs-roformer 0.3.10 has {want!r})")
        else:
            bad.append(f"{key} (unknown to bs-roformer 0.3.10)")
    if bad:
        raise SeparatorError(f"{model_type}: this config's network is not the one bs-roformer "
                             f"0.3.10 builds: {'; '.join(bad)}")
    return kwargs, bool(section(config, "model").get("zero_dc", True))


def _zero_dc_hook(positions):
    """A forward hook zeroing the mask entries (real and imaginary) at ``positions``."""
    def hook(module, inputs, output):
        output = output.clone()
        output[..., positions] = 0
        return output
    return hook


def build_roformer(model_type: str, config: dict):
    import torch

    cls = _package_class(model_type)
    kwargs, zero_dc = roformer_kwargs(model_type, config)
    try:
        with warnings.catch_warnings():  # the package's frequency count: an STFT of noise
            warnings.filterwarnings("ignore", message="A window was not provided")
            model = cls(**kwargs)
    except (TypeError, AssertionError, ValueError) as exc:
        raise SeparatorError(f"{model_type}: the config's model section does not build "
                             f"({exc})") from None
    if zero_dc:
        channels = model.audio_channels
        if model_type == "bs_roformer":
            # the mask's last axis is (frequency, channel, re/im) with frequency leading
            dc = torch.arange(2 * channels)
        else:
            # entries follow freq_indices (frequency * channels + channel), re/im interleaved
            slots = torch.nonzero(model.freq_indices < channels).flatten()
            dc = torch.stack([2 * slots, 2 * slots + 1], dim=1).flatten()
        for estimator in model.mask_estimators:
            estimator.register_forward_hook(_zero_dc_hook(dc))
    return model


def build_htdemucs(config: dict):
    try:
        from demucs.htdemucs import HTDemucs
    except ImportError as exc:
        raise SeparatorError(f"htdemucs needs the demucs package ({exc}): "
                             "pip install demucs==4.1.0") from None
    kwargs = dict(section(config, "htdemucs"))
    if int(kwargs.pop("num_subbands", 1)) != 1:
        raise SeparatorError("htdemucs: num_subbands other than 1 is MSST's own extension, "
                             "which demucs's HTDemucs does not have")
    training = section(config, "training")
    try:
        return HTDemucs(sources=list(training["instruments"]),
                        audio_channels=int(training.get("channels", 2)),
                        samplerate=int(training.get("samplerate", 44100)),
                        segment=training.get("segment", 11), **kwargs)
    except (TypeError, KeyError) as exc:
        raise SeparatorError(f"htdemucs: the config does not build demucs's HTDemucs "
                             f"({exc})") from None


def build(model_type: str, config: dict):
    if model_type in ROFORMERS:
        return build_roformer(model_type, config)
    if model_type == "htdemucs":
        return build_htdemucs(config)
    if model_type == "mdx23c":
        from .tfc_tdf import build_mdx23c

        return build_mdx23c(config)
    if model_type == "scnet":
        from .scnet import build_scnet

        return build_scnet(config)
    raise SeparatorError(f"MSST model type {model_type!r} is not supported here; supported: "
                         f"{', '.join((*ROFORMERS, 'htdemucs', 'mdx23c', 'scnet'))}")


def state_dict_of(package: Any, path: Path) -> dict:
    """The state dict inside an MSST checkpoint, unwrapped as MSST's inference does."""
    if isinstance(package, dict):
        for key in ("state", "state_dict", "model_state_dict"):
            if isinstance(package.get(key), dict):
                return package[key]
        if all(hasattr(v, "shape") for v in package.values()):
            return package
    raise WeightsError(f"{path}: not an MSST checkpoint (a state dict, or a dict holding one "
                       "under state, state_dict or model_state_dict)")


def load_strict(model, path: str | Path, model_type: str) -> None:
    """Load ``path`` into ``model`` strictly; the error names the first bad keys."""
    path = Path(path)
    state = state_dict_of(load_torch(path), path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} (the config builds {tuple(own[k].shape)})"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected),
                        ("shape mismatch", shapes)):
        if keys:
            more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
            problems.append(f"{label}: {', '.join(keys[:3])}{more}")
    if problems:
        raise WeightsError(f"{path} does not fit the {model_type} network its config builds: "
                           f"{'; '.join(problems)}; pass the config that came with this "
                           "checkpoint")
    model.load_state_dict(state, strict=True)
    model.eval()
