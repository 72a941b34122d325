"""An example demixbench plugin: one separator, one strategy, one metric and one dataset,
distributed in their own package.

Each is declared in this package's pyproject.toml under its entry-point group
(``demixbench.separators``, ``demixbench.strategies``, ``demixbench.metrics``,
``demixbench.datasets``); demixbench finds them once the package is installed.
"""

import numpy as np

from demixbench import STEMS
from demixbench.datasets import Dataset, Track
from demixbench.metrics import MetricInfo
from demixbench.separators import Separator
from demixbench.strategies import Step, Strategy


class HalfSplitSeparator(Separator):
    """Splits the mixture into vocals and accompaniment with a fixed gain (a toy 2-stem model)."""

    name = "example_split"
    sources = ("vocals", "accompaniment")
    sample_rate = 44100
    description = "example plugin: vocals = g * mixture, accompaniment = (1 - g) * mixture"

    def __init__(self, gain: float = 0.5):
        self.gain = float(gain)

    def params(self):
        return {"gain": self.gain}

    def _separate(self, mixture, sample_rate, references):
        g = np.float32(self.gain)
        return {"vocals": g * mixture, "accompaniment": (1 - g) * mixture}


class Consistency(Strategy):
    """Mixture consistency: the part of the mixture no stem explains is shared among the stems."""

    strategy_name = "example-consistency"
    description = "example plugin: add share x (mixture - sum of estimates) / stems to every stem"

    def __init__(self, inner: Separator, share: float = 1.0):
        super().__init__(inner)
        self.share = float(share)

    def strategy_params(self):
        return {"share": self.share}

    def trace(self, mixture, sample_rate, references=None):
        est = self.run_inner(mixture, sample_rate, references)
        parts = [s for s in est if s != "accompaniment"] or list(est)
        residual = (mixture - sum(est[s] for s in parts)) * np.float32(self.share / len(parts))
        fixed = {s: (v + residual if s in parts else v) for s, v in est.items()}
        return [Step(0, mixture, est, {"share": 0.0}), Step(1, mixture, fixed, {"share": self.share})]


def _snr(reference, estimate, sample_rate):
    noise = np.sum((reference.astype(np.float64) - estimate) ** 2)
    return float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / max(noise, 1e-20)))


SNR = MetricInfo("example_snr", "dB", True, "example plugin: plain SNR of the whole excerpt",
                 "mean", "signal", _snr)


def open_tones(rest: str, spec: str) -> Dataset:
    """``example-tones[:N]``: N tracks of four sine-tone stems (an example dataset plugin)."""
    n = int(rest or 2)
    sr = 44100
    t = np.arange(3 * sr) / sr

    def load(i):
        freqs = {"drums": 80.0, "bass": 55.0, "other": 440.0, "vocals": 220.0}
        stems = {k: np.tile(0.1 * np.sin(2 * np.pi * f * (i + 1) * t), (2, 1)).astype(np.float32)
                 for k, f in freqs.items()}
        return {k: stems[k] for k in STEMS}, sr

    tracks = tuple(Track(f"tones-{i}", "test", lambda i=i: load(i), f"tones {i}", f"tones v1 {i}")
                   for i in range(n))
    return Dataset(spec, tracks)
