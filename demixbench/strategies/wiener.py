"""The Wiener post-filter as a strategy: any separator's estimates refined by multichannel
Wiener EM (:func:`demixbench.separators.wiener.wiener_postfilter`).

``demixbench run --wiener`` runs every separator both plainly and under this strategy, so one
run holds the with/without comparison the seed paper makes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import DemixbenchError
from ..separators.base import Separator, check_range, check_stft
from ..separators.wiener import wiener_postfilter
from .base import Step, Strategy


class WienerFilter(Strategy):
    """Separate with ``inner``, then refine every estimate with ``iterations`` of Wiener EM."""

    strategy_name = "wiener"
    description = ("multichannel Wiener EM post-filter on every estimate")

    def __init__(self, inner: Separator, iterations: int = 1, n_fft: int = 4096,
                 hop: int = 1024, sum_to_mix: bool = False):
        super().__init__(inner)
        if int(iterations) < 1:
            raise DemixbenchError(f"wiener: iterations must be >= 1, got {iterations}")
        check_stft("wiener", n_fft, hop)
        check_range("wiener", "iterations", iterations, 1, 100, integer=True)
        self.iterations, self.n_fft, self.hop = int(iterations), int(n_fft), int(hop)
        self.sum_to_mix = bool(sum_to_mix)

    def strategy_params(self) -> dict[str, Any]:
        return {"iterations": self.iterations, "n_fft": self.n_fft, "hop": self.hop,
                "sum_to_mix": self.sum_to_mix}

    def refine(self, mixture: np.ndarray, estimates: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return wiener_postfilter(mixture, estimates, iterations=self.iterations, n_fft=self.n_fft,
                                 hop=self.hop, sum_to_mix=self.sum_to_mix)

    def trace(self, mixture: np.ndarray, sample_rate: int,
              references: Mapping[str, np.ndarray] | None = None) -> list[Step]:
        est = self.run_inner(mixture, sample_rate, references)
        return [Step(0, mixture, self.refine(mixture, est), {"wiener_iterations": self.iterations})]
