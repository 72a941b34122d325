"""Ideal time-frequency mask oracles as defined for SiSEC 2018 (sigsep-mus-oracle).

All four work on a Hann-window STFT of 2048 samples with 50 % overlap, per channel:

- IRM(alpha): soft mask ``|S_j|^alpha / (eps + sum_k |S_k|^alpha)`` (alpha=1: IRM1, alpha=2: IRM2);
- IBM(alpha): binary mask ``1[|S_j|^alpha / (eps + |X|^alpha) >= theta]``, theta = 0.5.

The mask multiplies the mixture STFT and the inverse STFT is cut to the mixture's length. They
need the reference stems, so they are oracles: upper bounds, reported apart from blind methods.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .. import STEMS
from ..errors import SeparatorError
from .base import Estimates, Separator, check_stft
from .wiener import filter_mixture, istft, psd_and_covariance, stft

_EPS = np.finfo(np.float64).eps


class _MaskOracle(Separator):
    sources = STEMS
    sample_rate = None
    oracle = True
    alpha: float = 2.0

    def __init__(self, n_fft: int = 2048):
        check_stft(self.name, n_fft)
        if n_fft % 2:
            raise SeparatorError(f"{self.name}: n_fft must be an even number >= 16, got {n_fft}")
        self.n_fft = int(n_fft)

    def params(self) -> dict:
        return {"n_fft": self.n_fft, "alpha": self.alpha}

    def _references(self, references: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [s for s in self.sources if s not in references]
        if missing:
            raise SeparatorError(f"{self.name}: references lack {missing}; an oracle needs "
                                 f"every one of {list(self.sources)}")
        return {s: references[s] for s in self.sources}

    def _masks(self, mix_spec: np.ndarray, ref_specs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _separate(self, mixture, sample_rate, references) -> Estimates:
        refs = self._references(references)
        n = mixture.shape[1]
        if n < self.n_fft:  # scipy's STFT needs at least one full segment
            pad = self.n_fft - n
            mixture = np.pad(mixture, ((0, 0), (0, pad)))
            refs = {k: np.pad(v, ((0, 0), (0, pad))) for k, v in refs.items()}
        hop = self.n_fft // 2
        x = stft(mixture, self.n_fft, hop)
        specs = {k: stft(v, self.n_fft, hop) for k, v in refs.items()}
        masks = self._masks(x, specs)
        return {k: istft(x * m, self.n_fft, hop, n) for k, m in masks.items()}


class _IRM(_MaskOracle):
    def _masks(self, mix_spec, ref_specs):
        power = {k: np.abs(v) ** self.alpha for k, v in ref_specs.items()}
        total = _EPS + sum(power.values())
        return {k: p / total for k, p in power.items()}


class _IBM(_MaskOracle):
    theta = 0.5

    def params(self) -> dict:
        return {**super().params(), "theta": self.theta}

    def _masks(self, mix_spec, ref_specs):
        mix_power = _EPS + np.abs(mix_spec) ** self.alpha
        return {k: (np.abs(v) ** self.alpha / mix_power >= self.theta).astype(np.float64)
                for k, v in ref_specs.items()}


class IRM1(_IRM):
    name = "irm1"
    alpha = 1.0
    description = "ideal ratio mask, magnitude (alpha=1), oracle"


class IRM2(_IRM):
    name = "irm2"
    alpha = 2.0
    description = "ideal ratio mask, power / Wiener-like (alpha=2), oracle"


class IBM1(_IBM):
    name = "ibm1"
    alpha = 1.0
    description = "ideal binary mask (alpha=1, theta=0.5), oracle"


class IBM2(_IBM):
    name = "ibm2"
    alpha = 2.0
    description = "ideal binary mask (alpha=2, theta=0.5), oracle"


class MWF(Separator):
    """Multichannel Wiener filter oracle (SiSEC 2018): each stem's PSD and spatial covariance
    are estimated from the true stem, and the mixture is filtered with them once (see
    :mod:`demixbench.separators.wiener`). Unlike the mask oracles it uses the inter-channel
    correlations, so it is the upper bound of Wiener post-filtering."""

    name = "mwf"
    sources = STEMS
    sample_rate = None
    oracle = True
    description = "multichannel Wiener filter with PSDs and spatial covariances of the true stems, oracle"

    def __init__(self, n_fft: int = 4096, hop: int = 1024):
        check_stft("mwf", n_fft, hop)
        if n_fft % 2:
            raise SeparatorError(f"mwf: need an even n_fft >= 16 and 0 < hop <= n_fft, got "
                                 f"n_fft={n_fft}, hop={hop}")
        self.n_fft, self.hop = int(n_fft), int(hop)

    def params(self) -> dict:
        return {"n_fft": self.n_fft, "hop": self.hop}

    def _separate(self, mixture, sample_rate, references) -> Estimates:
        missing = [s for s in self.sources if s not in references]
        if missing:
            raise SeparatorError(f"mwf: references lack {missing}; an oracle needs every one "
                                 f"of {list(self.sources)}")
        n = mixture.shape[1]
        x = stft(mixture, self.n_fft, self.hop)
        v, R = psd_and_covariance([stft(references[s], self.n_fft, self.hop) for s in self.sources])
        specs = filter_mixture(x, v, R)
        return {s: istft(y, self.n_fft, self.hop, n) for s, y in zip(self.sources, specs)}
