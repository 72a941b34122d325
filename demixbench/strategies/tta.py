"""Test-time augmentation as a strategy: the wrapped separator run on transformed copies of the
mixture, each output transformed back, all averaged.

- ``shifts=N``: demucs's random shifts — the mixture padded by half a second on both sides,
  separated N times from a random offset within that half second, each output re-aligned and
  cropped, the N averaged (demucs's ``apply_model(shifts=N)``; offsets drawn from ``seed``, so
  a run repeats);
- ``flip=true``: MSST's augmentations — the channels swapped and the polarity inverted, each
  output undone the same way and averaged with the plain pass (three passes; each pass does its
  ``shifts`` when both are set).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import DemixbenchError
from ..separators.base import Separator, check_range
from .base import Step, Strategy


class TestTimeAugmentation(Strategy):
    __test__ = False  # not a pytest class, whatever its name
    strategy_name = "tta"
    description = "test-time augmentation: demucs's random shifts, MSST's channel and polarity flips"

    def __init__(self, inner: Separator, shifts: int = 0, flip: bool = False, seed: int = 0,
                 max_shift: float = 0.5):
        super().__init__(inner)
        check_range("tta", "shifts", shifts, 0, 64, integer=True)
        check_range("tta", "max_shift", max_shift, 0.0, 10.0)
        if not shifts and not flip:
            raise DemixbenchError("tta: set shifts=N (random shifts) and/or flip=true (channel "
                                  "and polarity flips); with neither it is the plain separator")
        self.shifts, self.flip, self.seed = int(shifts), bool(flip), int(seed)
        self.max_shift = float(max_shift)

    def strategy_params(self) -> dict[str, Any]:
        return {"shifts": self.shifts, "flip": self.flip, "seed": self.seed,
                "max_shift": self.max_shift if self.shifts else None}

    def _shifted(self, mixture: np.ndarray, sample_rate: int, references, rng) -> dict:
        if not self.shifts:
            return self.run_inner(mixture, sample_rate, references)
        n = mixture.shape[-1]
        pad = int(self.max_shift * sample_rate)
        padded = np.pad(mixture, ((0, 0), (pad, pad)))
        total: dict[str, np.ndarray] = {}
        for _ in range(self.shifts):
            offset = int(rng.integers(0, pad + 1)) if pad else 0
            piece = np.ascontiguousarray(padded[:, offset:offset + n + pad])
            refs = None if references is None else {
                k: np.ascontiguousarray(np.pad(v, ((0, 0), (pad, pad)))[:, offset:offset + n + pad])
                for k, v in references.items()}
            out = self.run_inner(piece, sample_rate, refs)
            for k, v in out.items():
                part = v[:, pad - offset:pad - offset + n]
                total[k] = total.get(k, 0) + part
        return {k: v / self.shifts for k, v in total.items()}

    def trace(self, mixture: np.ndarray, sample_rate: int,
              references: Mapping[str, np.ndarray] | None = None) -> list[Step]:
        rng = np.random.default_rng(self.seed)
        passes = [(lambda x: x, lambda x: x)]
        if self.flip:
            passes += [(lambda x: x[::-1], lambda x: x[::-1]), (lambda x: -x, lambda x: -x)]
        total: dict[str, np.ndarray] = {}
        for forward, back in passes:
            refs = None if references is None else {
                k: np.ascontiguousarray(forward(v)) for k, v in references.items()}
            out = self._shifted(np.ascontiguousarray(forward(mixture)), sample_rate, refs, rng)
            for k, v in out.items():
                total[k] = total.get(k, 0) + back(v)
        estimates = {k: (v / len(passes)).astype(np.float32) for k, v in total.items()}
        return [Step(0, mixture, estimates, {"passes": len(passes) * max(self.shifts, 1)})]
