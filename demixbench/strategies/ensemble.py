"""Ensembles as a strategy: the separator it wraps and the ``separators`` it names, combined the
ways MSST's ``ensemble.py`` combines its models' outputs (the community's anchor for ensembles):

- ``avg_wave``: weighted mean of the waveforms; ``median_wave``; ``min_wave`` / ``max_wave``:
  per sample, the member value of smallest / largest magnitude;
- ``avg_fft``: weighted mean of the complex STFTs; ``median_fft`` (real and imaginary parts
  each); ``min_fft`` / ``max_fft``: per bin, the member's complex value of smallest / largest
  magnitude — with MSST's STFT (librosa, 2048-point Hann window, hop 1024, centred) and its
  inverse at the input's length.

Weights apply to the two averages, as in MSST. ``ensemble:separators=unet/demucs_lite,
method=avg_fft`` over ``--separators hpss_nmf`` is the ensemble of hpss_nmf, unet and
demucs_lite: members are built from the registry with their default parameters; every
member's full configuration (code, weights files) is in the ensemble's identity, so the
ensemble is scored, stored and compared as a separator of its own. Members that work at
another rate or channel count are adapted (and brought back) as the runner adapts any
separator; the ensemble returns the stems every member returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from ..errors import DemixbenchError
from ..separators.base import Separator, separate_adapted, suite_stems
from .base import Step, Strategy

METHODS = ("avg_wave", "median_wave", "min_wave", "max_wave", "avg_fft", "median_fft",
           "min_fft", "max_fft")
N_FFT, HOP = 2048, 1024  # MSST's ensemble STFT


def _pick(stack: np.ndarray, largest: bool) -> np.ndarray:
    """Per element, the member value (axis 0) of largest / smallest magnitude."""
    index = (np.abs(stack).argmax if largest else np.abs(stack).argmin)(axis=0)
    return np.take_along_axis(stack, index[None], axis=0)[0]


def combine(estimates: list[np.ndarray], method: str, weights: list[float]) -> np.ndarray:
    """One stem's member estimates ``(channels, samples)`` combined by ``method``."""
    import librosa

    stack = np.stack([np.asarray(e, dtype=np.float64) for e in estimates])
    w = np.asarray(weights, dtype=np.float64)[:, None, None]
    if method.endswith("_fft"):
        n = stack.shape[-1]
        stack = librosa.stft(stack, n_fft=N_FFT, hop_length=HOP)
        w = w[..., None]
    if method.startswith("avg"):
        out = (stack * w).sum(axis=0) / w.sum()
    elif method.startswith("median"):
        out = np.median(stack.real, axis=0) + (1j * np.median(stack.imag, axis=0)
                                               if np.iscomplexobj(stack) else 0)
    else:
        out = _pick(stack, largest=method.startswith("max"))
    if method.endswith("_fft"):
        out = librosa.istft(out, hop_length=HOP, n_fft=N_FFT, length=n)
    return out.astype(np.float32)


class Ensemble(Strategy):
    strategy_name = "ensemble"
    description = ("ensemble of the separator and the named ones: MSST's avg/median/min/max "
                   "over waveforms or STFTs, weighted averages")

    def __init__(self, inner: Separator, separators: list[str] | None = None,
                 method: Literal[METHODS] = "avg_wave", weights: list[float] | None = None):
        super().__init__(inner)
        from ..separators import default_registry

        if method not in METHODS:
            raise DemixbenchError(f"ensemble: method must be one of {', '.join(METHODS)}, "
                                  f"got {method!r}")
        names = [n for n in (separators or []) if n != inner.name]
        if not names:
            raise DemixbenchError("ensemble: name the other members, e.g. "
                                  "ensemble:separators=unet/demucs_lite")
        registry = default_registry()
        self.members = [inner, *(registry.create(n) for n in names)]
        if any(m.oracle for m in self.members):
            raise DemixbenchError("ensemble: oracle members would make every row an oracle's; "
                                  "ensemble blind separators only")
        if weights is not None and len(weights) != len(self.members):
            raise DemixbenchError(f"ensemble: {len(weights)} weights for {len(self.members)} "
                                  f"members ({', '.join(m.name for m in self.members)})")
        self.weights = [float(w) for w in weights] if weights else [1.0] * len(self.members)
        if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise DemixbenchError("ensemble: weights must be >= 0 with a positive sum")
        self.method = method
        common = set.intersection(*(set(suite_stems(m, {s: 0 for s in m.sources}))
                                    for m in self.members))
        inner_map = inner.stem_map or {}
        self.sources = tuple(s for s in inner.sources if inner_map.get(s, s) in common)
        if not self.sources:
            raise DemixbenchError(f"ensemble: the members return no stem in common "
                                  f"({'; '.join(f'{m.name}: {m.sources}' for m in self.members)})")

    def strategy_params(self) -> dict[str, Any]:
        return {"method": self.method, "weights": self.weights,
                "members": [m.config() for m in self.members[1:]],
                "stft": [N_FFT, HOP] if self.method.endswith("_fft") else None}

    def notes(self) -> list[str]:
        return [n for m in self.members for n in m.notes()]

    def trace(self, mixture: np.ndarray, sample_rate: int,
              references: Mapping[str, np.ndarray] | None = None) -> list[Step]:
        inner_map = self.inner.stem_map or {}
        outputs = [suite_stems(self.inner, self.run_inner(mixture, sample_rate))]
        for member in self.members[1:]:
            est, _ = separate_adapted(member, mixture, sample_rate)
            outputs.append(suite_stems(member, est))
        estimates = {s: combine([o[inner_map.get(s, s)] for o in outputs], self.method,
                                self.weights) for s in self.sources}
        return [Step(0, mixture, estimates, {"members": [m.name for m in self.members]})]
