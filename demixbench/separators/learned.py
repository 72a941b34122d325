"""Separators of the models ``demixbench train`` trains (:mod:`demixbench.models`): ``unet``,
``demucs_lite`` (and ``convtasnet``'s generic checkpoints, :mod:`.convtasnet`).

Each loads a checkpoint (``--weights``, else the one shipped in ``separators/data/learned/``
when the package has it) with ``weights_only=True``; the checkpoint's SHA-256 is part of the
separator's configuration, so another checkpoint is another separator configuration. Long
inputs are cut into ``segment``-second chunks with demucs' overlap-add (``apply_model``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .. import STEMS
from ..device import OnDevice
from ..errors import SeparatorError
from ..weights import MissingWeightsError
from .base import Estimates, Separator


def shipped_checkpoint(model: str) -> Path | None:
    """The checkpoint shipped with the package for ``model``, if it has one."""
    path = Path(str(resources.files("demixbench.separators") / "data" / "learned" / f"{model}.pt"))
    return path if path.is_file() else None


class LearnedSeparator(OnDevice, Separator):
    model_name: ClassVar[str] = ""
    packages = ("torch",)
    sources: tuple[str, ...] = STEMS
    sample_rate = 44100
    channels = 2
    needs_weights = True

    def __init__(self, weights: str | None = None, segment: float | None = 10.0,
                 overlap: float = 0.25, device: str = "cpu"):
        path = Path(weights) if weights else shipped_checkpoint(self.model_name)
        if path is None:
            raise MissingWeightsError(self._missing())
        self.model, self.package = self._load(path)
        self.files = [path]
        self.weights_digest()  # the SHA-256 of the file as loaded is part of config()
        self.weights, self.overlap = str(path), float(overlap)
        self.segment = None if segment is None else float(segment)
        if self.segment is not None and self.segment <= 0:
            raise SeparatorError(f"{self.name}: segment must be positive seconds, got {segment}")
        self._set_device(device)
        self.model.to(self.device)
        self.sources = tuple(self.model.sources)
        self.sample_rate = self.model.samplerate
        self.channels = self.model.audio_channels

    def _load(self, path: Path):
        """``(model in eval mode, checkpoint dict)`` from ``path`` (the format of
        :mod:`demixbench.models.checkpoint`, which ``demixbench train`` writes)."""
        from ..models.checkpoint import load_model

        return load_model(path, self.model_name)

    def _missing(self) -> str:
        return (f"{self.name}: this install ships no {self.model_name} checkpoint; train one "
                f"(demixbench train {self.model_name} --dataset ... --out {self.model_name}.pt) "
                "and pass --weights")

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        try:
            import torch  # noqa: F401
        except ImportError as exc:
            return False, f"{cls.name} needs torch ({exc}): pip install 'demixbench[neural]'"
        if shipped_checkpoint(cls.model_name) is None:
            return False, f"no shipped checkpoint: pass --weights (demixbench train {cls.model_name})"
        return True, ""

    def params(self) -> dict[str, Any]:
        return {"model": self.model_name, "config": self.package["config"],
                "segment": self.segment, "overlap": self.overlap}

    def _separate(self, mixture, sample_rate, references) -> Estimates:
        return separate_chunked(self.model, mixture, self.device, self.segment, self.overlap)


def separate_chunked(model, mixture: np.ndarray, device: str, segment: float | None,
                     overlap: float) -> Estimates:
    """``model``'s estimates of ``mixture`` ``(channels, samples)``: in one pass when it is no
    longer than ``segment`` seconds (or ``segment`` is None), else in ``segment``-second chunks
    overlap-added by demucs' ``apply_model``."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(mixture, dtype=np.float32))[None].to(device)
    with torch.no_grad():
        if segment is None or x.shape[-1] <= segment * model.samplerate:
            out = model(x)[0]
        else:
            from demucs.apply import apply_model

            out = apply_model(model, x, shifts=0, split=True, overlap=overlap, segment=segment,
                              device=device, progress=False)[0]
    out = out.cpu().numpy()
    return {s: out[i] for i, s in enumerate(model.sources)}


class UNetSeparator(LearnedSeparator):
    name = "unet"
    model_name = "unet"
    description = "spectrogram U-Net with a BLSTM bottleneck (seed report 003), trained here"


class DemucsLiteSeparator(LearnedSeparator):
    name = "demucs_lite"
    model_name = "demucs_lite"
    description = "simplified waveform Demucs (seed report 003, section 7), trained here"
