"""open-unmix (Stöter, Uhlich, Liutkus and Mitsufuji 2019): ``umxhq``, ``umx`` and ``umxl``
through the ``openunmix`` package, its own networks and its own multichannel Wiener step.

The package builds each target's network (its ``umxhq_spec``/``umx_spec``/``umxl_spec`` with
``pretrained=False``, so it downloads nothing) and runs the separation (its ``Separator``:
STFT, the four networks, ``niter`` EM iterations of its Wiener filter over ``wiener_win_len``
frames, inverse STFT). What is this project's:

- the weights are the published per-target state dicts (``demixbench fetch umxhq``; files that
  ``openunmix`` or ``torch.hub`` already downloaded are found in torch hub's folder), read with
  ``weights_only=True`` and loaded **strictly**: ``openunmix`` itself loads with
  ``strict=False``, which would run a wrong file with untrained layers. The only keys let
  through are the STFT window and sample rate that open-unmix 1.0's networks stored
  (:data:`LEGACY_KEYS`); anything else missing, unexpected or of another shape is an error naming
  the first bad keys;
- the Wiener step (``niter``, ``softmask``, ``wiener_win_len``) is a recorded parameter, part of
  the separator's identity with the files' SHA-256.

``openunmix`` imports ``torchaudio`` when it loads (it uses none of it for separation), and
torchaudio loads only beside the torch it was built for: with this project's CPU torch 2.13
no torchaudio wheel loads, so these separators are listed as unavailable with that reason. In
an environment whose torch and torchaudio match (e.g. torch 2.9.1 with torchaudio 2.9.x),
``pip install 'demixbench[openunmix]'`` makes them run.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..device import OnDevice
from ..errors import SeparatorError
from ..weights import WeightsError, available, load_torch, locate
from .base import Estimates, Separator, check_range

# open-unmix 1.0's networks held their STFT (window) and their sample rate; its published
# umxhq/umx files were written then. They change nothing in 1.3's network, which has neither.
LEGACY_KEYS = ("stft.window", "transform.0.window", "sample_rate")
N_FFT, HOP = 4096, 1024


def openunmix_package():
    """The imported ``openunmix`` package, or a one-line :class:`SeparatorError` saying why not."""
    try:
        import openunmix
        import openunmix.model  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name == "openunmix":
            raise SeparatorError("open-unmix needs the openunmix package: pip install "
                                 "'demixbench[openunmix]', where torch and torchaudio are of "
                                 "one release (openunmix imports torchaudio)") from None
        raise _torchaudio_error(exc) from None
    except OSError as exc:  # torchaudio's compiled library does not load beside this torch
        raise _torchaudio_error(exc) from None
    return openunmix


def _torchaudio_error(exc: BaseException) -> SeparatorError:
    import torch

    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return SeparatorError(f"open-unmix: the openunmix package imports torchaudio, which does not "
                          f"load beside torch {torch.__version__} ({first}); install torch and "
                          f"torchaudio of one release (e.g. torch 2.9.1 with torchaudio 2.9.x)")


def load_target(network, state: dict, path, target: str) -> None:
    """Load ``state`` into ``network`` strictly (but for :data:`LEGACY_KEYS`)."""
    own = network.state_dict()
    unexpected = [k for k in state if k not in own and k not in LEGACY_KEYS]
    missing = [k for k in own if k not in state]
    if unexpected or missing:
        raise WeightsError(f"{path}: not an open-unmix {target} network of this size (unexpected "
                           f"keys {unexpected[:3]}, missing {missing[:3]})")
    wrong = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if wrong:
        k = wrong[0]
        raise WeightsError(f"{path}: {k} has shape {tuple(state[k].shape)}, this network needs "
                           f"{tuple(own[k].shape)} ({len(wrong)} tensor(s) differ: is it another "
                           "open-unmix model?)")
    network.load_state_dict({k: state[k] for k in own}, strict=True)


class OpenUnmixSeparator(OnDevice, Separator):
    """An open-unmix model: one network per target, one Wiener step for all."""

    name = "umxhq"
    packages = ("openunmix", "torch")
    spec: ClassVar[str] = "umxhq_spec"
    sources: tuple[str, ...] = ("vocals", "drums", "bass", "other")
    sample_rate = 44100
    channels = 2
    needs_weights = True
    description = ("open-unmix UMX-HQ (BLSTM per target, trained on MUSDB18-HQ) on the openunmix "
                   "package, with its Wiener step")

    def __init__(self, weights: str | None = None, niter: int = 1, softmask: bool = False,
                 wiener_win_len: int | None = 300, device: str = "cpu"):
        check_range(self.name, "niter", niter, 0, 20, integer=True)
        if wiener_win_len is not None:
            check_range(self.name, "wiener_win_len", wiener_win_len, 1, 1 << 20, integer=True)
        self.niter, self.softmask = int(niter), bool(softmask)
        self.wiener_win_len = None if wiener_win_len is None else int(wiener_win_len)
        openunmix = openunmix_package()
        self.files = locate(self.name, weights)
        self.weights_digest()  # the SHA-256 of the files as loaded is part of config()
        self._set_device(device)
        self.separator = self._build(openunmix)

    def _build(self, openunmix):
        networks = getattr(openunmix, self.spec)(targets=list(self.sources), device="cpu",
                                                 pretrained=False)
        for target in self.sources:
            path = next(p for p in self.files if p.name.startswith(f"{target}-"))
            load_target(networks[target], load_torch(path), path, target)
        separator = openunmix.model.Separator(
            networks, niter=self.niter, softmask=self.softmask, residual=False,
            sample_rate=float(self.sample_rate), n_fft=N_FFT, n_hop=HOP, nb_channels=2,
            wiener_win_len=self.wiener_win_len, filterbank="torch")
        separator.freeze()
        return separator.to(self.device)

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        try:
            openunmix_package()
        except SeparatorError as exc:
            return False, str(exc)
        return available(cls.name)

    def params(self) -> dict[str, Any]:
        return {"files": [p.name for p in self.files], "n_fft": N_FFT, "hop": HOP,
                "wiener": {"niter": self.niter, "softmask": self.softmask,
                           "wiener_win_len": self.wiener_win_len}}

    def _separate(self, mixture, sample_rate, references) -> Estimates:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(mixture, dtype=np.float32))[None]
        with torch.no_grad():
            out = self.separator(x.to(self.device))[0].cpu().numpy()
        return {s: out[i] for i, s in enumerate(self.separator.target_models)}


class OpenUnmixUMX(OpenUnmixSeparator):
    name = "umx"
    spec = "umx_spec"
    description = "open-unmix UMX (trained on MUSDB18) on the openunmix package, with its Wiener step"


class OpenUnmixUMXL(OpenUnmixSeparator):
    name = "umxl"
    spec = "umxl_spec"
    description = ("open-unmix UMX-L (hidden size 1024, trained on extra data) on the openunmix "
                   "package, with its Wiener step")
