"""Signal-processing separators of the MIR course project (seed 003): HPSS + REPET-SIM and
HPSS + band-wise NMF, with their building blocks as plain functions.

Building blocks (each unit-tested with a known answer):

- :func:`hpss`: harmonic/percussive split by median filtering (librosa's, Fitzgerald 2010 with
  Driedger's margins), on a complex STFT;
- :func:`attenuate_band`: scale the bins of a frequency band;
- :func:`lowpass`: Butterworth low-pass, zero-phase by default, cutoff checked against Nyquist;
- :func:`repet_sim_background`: REPET-SIM (Rafii & Pardo 2012): cosine similarity between
  frames, for each frame the most similar frames (similarity peaks at least ``min_distance``
  apart, above ``min_similarity``, at most ``max_frames``), their element-wise median as the
  repeating background.

Stereo: :class:`HPSSRepet` runs HPSS, the band attenuation and the low-pass on each channel;
REPET-SIM picks the similar frames once, from the channel-averaged magnitude, and takes the
median background per channel (a shared choice of frames, per-channel masks).
:class:`HPSSNMF` follows the seed and works on the mono mixture's magnitude; its masks are
then applied to every channel's STFT, so the estimates keep the mixture's channels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.signal import butter, sosfilt, sosfiltfilt

from .. import STEMS
from ..errors import SeparatorError
from .base import Estimates, Separator, check_range, check_stft
from .nmf import nmf

_EPS = 1e-12
_SIM_BLOCK = 512  # rows of the similarity matrix held at once
_MEDIAN_BLOCK = 64  # frames whose background is computed at once


def _librosa():
    import librosa

    return librosa


def stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """``(..., samples)`` -> ``(..., bins, frames)`` complex64, librosa's centred Hann STFT."""
    return _librosa().stft(np.asarray(x, dtype=np.float32), n_fft=n_fft, hop_length=hop)


def istft(spec: np.ndarray, n_fft: int, hop: int, length: int) -> np.ndarray:
    return _librosa().istft(spec, n_fft=n_fft, hop_length=hop, length=length).astype(np.float32)


def hpss(spec: np.ndarray, kernel_size: int | tuple[int, int] = 31, power: float = 2.0,
         margin: float | tuple[float, float] = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic and percussive parts of a complex STFT ``(..., F, T)`` (soft masks)."""
    return _librosa().decompose.hpss(spec, kernel_size=kernel_size, power=power, margin=margin)


def band_bins(sample_rate: int, n_fft: int, low: float, high: float) -> np.ndarray:
    """Boolean mask of the STFT bins whose centre frequency lies in ``[low, high]`` Hz."""
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    return (freqs >= low) & (freqs <= high)


def attenuate_band(spec: np.ndarray, sample_rate: int, n_fft: int, low: float, high: float,
                   factor: float) -> np.ndarray:
    """Multiply the bins in ``[low, high]`` Hz by ``factor`` (magnitude scaled, phase kept)."""
    out = spec.copy()
    out[..., band_bins(sample_rate, n_fft, low, high), :] *= factor
    return out


def lowpass(x: np.ndarray, sample_rate: int, cutoff: float, order: int = 6,
            zero_phase: bool = True) -> np.ndarray:
    """Butterworth low-pass along the last axis. ``zero_phase`` filters forward and backward
    (the magnitude response is then squared: -6 dB at ``cutoff``)."""
    nyquist = sample_rate / 2.0
    if not 0 < cutoff < nyquist:
        raise SeparatorError(f"low-pass cutoff {cutoff} Hz must lie between 0 and the Nyquist "
                             f"frequency {nyquist:g} Hz of {sample_rate} Hz audio; lower it")
    sos = butter(order, cutoff, btype="low", fs=sample_rate, output="sos")
    if zero_phase and x.shape[-1] > 3 * (2 * len(sos) + 1):
        return sosfiltfilt(sos, x, axis=-1).astype(np.float32)
    return sosfilt(sos, x, axis=-1).astype(np.float32)


def similar_frames(mag: np.ndarray, min_similarity: float = 0.0, min_distance: int = 1,
                   max_frames: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """For each frame of ``mag`` ``(F, T)``, the indices of its most similar frames.

    Similarity is the cosine between frame spectra. Candidates are the peaks of each frame's
    similarity row (a frame whose similarity is the largest within ``min_distance`` frames on
    either side, so chosen frames lie at least ``min_distance`` apart) that reach
    ``min_similarity``; the ``max_frames`` best are kept. A frame is its own best match.
    Returns ``(indices (T, k), counts (T,))``: row ``t`` holds ``counts[t]`` valid indices.
    """
    F, T = mag.shape
    k = max(1, min(max_frames, T))
    norm = mag / (np.linalg.norm(mag, axis=0, keepdims=True) + _EPS)
    norm = norm.astype(np.float32)
    idx = np.zeros((T, k), dtype=np.int64)
    counts = np.zeros(T, dtype=np.int64)
    for t0 in range(0, T, _SIM_BLOCK):
        t1 = min(T, t0 + _SIM_BLOCK)
        sim = norm[:, t0:t1].T @ norm  # (rows, T)
        rows = np.arange(t1 - t0)
        sim[rows, np.arange(t0, t1)] = 1.0  # a frame is its own best match, even if silent
        peaks = sim >= maximum_filter1d(sim, size=2 * min_distance + 1, axis=1, mode="constant",
                                        cval=-np.inf)
        score = np.where(peaks & (sim >= min_similarity), sim, -np.inf)
        if k < T:
            part = np.argpartition(-score, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(T), (t1 - t0, T)).copy()
        vals = np.take_along_axis(score, part, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        idx[t0:t1] = np.take_along_axis(part, order, axis=1)
        counts[t0:t1] = np.isfinite(np.take_along_axis(vals, order, axis=1)).sum(axis=1)
    return idx, np.maximum(counts, 1)


def repet_sim_background(mag: np.ndarray, min_similarity: float = 0.0, min_distance: int = 1,
                         max_frames: int = 100) -> np.ndarray:
    """REPET-SIM repeating background of ``mag`` ``(C, F, T)`` (or ``(F, T)``): the median, per
    bin, of each frame's similar frames (chosen on the channel-averaged magnitude)."""
    squeeze = mag.ndim == 2
    mag3 = mag[None] if squeeze else mag
    C, F, T = mag3.shape
    idx, counts = similar_frames(mag3.mean(axis=0), min_similarity, min_distance, max_frames)
    k = idx.shape[1]
    out = np.empty((C, F, T), dtype=np.float32)
    src = np.ascontiguousarray(np.transpose(mag3, (2, 0, 1)), dtype=np.float32)  # (T, C, F)
    for t0 in range(0, T, _MEDIAN_BLOCK):
        t1 = min(T, t0 + _MEDIAN_BLOCK)
        gathered = src[idx[t0:t1]]  # (t, k, C, F)
        cnt = counts[t0:t1]
        if np.all(cnt == k):
            med = np.median(gathered, axis=1)
        else:  # fewer peaks than k: invalid slots sort to the end, take the middle of the rest
            valid = np.arange(k)[None, :] < cnt[:, None]
            gathered = np.where(valid[:, :, None, None], gathered, np.inf)
            gathered.sort(axis=1)
            lo = np.take_along_axis(gathered, ((cnt - 1) // 2)[:, None, None, None], axis=1)[:, 0]
            hi = np.take_along_axis(gathered, (cnt // 2)[:, None, None, None], axis=1)[:, 0]
            med = 0.5 * (lo + hi)
        out[:, :, t0:t1] = np.transpose(med, (1, 2, 0))
    return out[0] if squeeze else out


class HPSSRepet(Separator):
    """HPSS + REPET-SIM pipeline of the course project (seed 003, section 3.1).

    1. HPSS of the mixture STFT (``kernel_size``, ``power``, ``margin``);
    2. drums: the percussive STFT with ``vocal_band`` Hz (300-3000 in the seed) scaled by
       ``drum_band_gain``, inverse STFT;
    3. bass: the harmonic waveform through a Butterworth low-pass (``bass_cutoff``, ``bass_order``);
    4. vocals: REPET-SIM on the harmonic magnitude; the soft foreground mask
       ``1 - min(background, |H|) / |H|`` on the harmonic STFT, inverse STFT;
    5. other: mixture - drums - bass - vocals in the time domain.

    The seed fixes the 300-3000 Hz band and the method; it gives no numbers for the rest, so the
    defaults are librosa's HPSS defaults, REPET-SIM's published defaults (similarity >= 0,
    frames >= 1 s apart, at most 100 frames; Rafii & Pardo 2012) and our choices for the rest
    (band gain 0.3, a 6th-order zero-phase low-pass at 250 Hz).
    """

    name = "hpss_repet"
    packages = ("librosa",)
    sources = STEMS
    sample_rate = None
    description = "HPSS (drums, band-cleaned) + low-pass (bass) + REPET-SIM (vocals), other = residual"

    def __init__(self, n_fft: int = 2048, hop: int = 512, kernel_size: int = 31,
                 power: float = 2.0, margin: float = 1.0, vocal_band: tuple[float, float] = (300.0, 3000.0),
                 drum_band_gain: float = 0.3, bass_cutoff: float = 250.0, bass_order: int = 6,
                 zero_phase: bool = True, min_similarity: float = 0.0, min_distance_s: float = 1.0,
                 max_frames: int = 100):
        check_stft("hpss_repet", n_fft, hop)
        check_range("hpss_repet", "kernel_size", kernel_size, 1, 1001, integer=True)
        check_range("hpss_repet", "max_frames", max_frames, 1, 10000, integer=True)
        check_range("hpss_repet", "bass_order", bass_order, 1, 32, integer=True)
        if not 0 <= drum_band_gain <= 1:
            raise SeparatorError(f"hpss_repet: drum_band_gain must lie in [0, 1], got {drum_band_gain}")
        if max_frames < 1 or min_distance_s < 0 or margin < 1:
            raise SeparatorError("hpss_repet: need max_frames >= 1, min_distance_s >= 0, margin >= 1")
        self.n_fft, self.hop, self.kernel_size = int(n_fft), int(hop), int(kernel_size)
        self.power, self.margin = float(power), float(margin)
        self.vocal_band = (float(vocal_band[0]), float(vocal_band[1]))
        self.drum_band_gain = float(drum_band_gain)
        self.bass_cutoff, self.bass_order = float(bass_cutoff), int(bass_order)
        self.zero_phase = bool(zero_phase)
        self.min_similarity, self.min_distance_s = float(min_similarity), float(min_distance_s)
        self.max_frames = int(max_frames)

    def params(self) -> dict[str, Any]:
        return {"n_fft": self.n_fft, "hop": self.hop, "kernel_size": self.kernel_size,
                "power": self.power, "margin": self.margin, "vocal_band": list(self.vocal_band),
                "drum_band_gain": self.drum_band_gain, "bass_cutoff": self.bass_cutoff,
                "bass_order": self.bass_order, "zero_phase": self.zero_phase,
                "min_similarity": self.min_similarity, "min_distance_s": self.min_distance_s,
                "max_frames": self.max_frames,
                "stereo": "per-channel HPSS/low-pass/masks, shared frame choice"}

    def _separate(self, mixture, sample_rate, references) -> Estimates:
        n = mixture.shape[1]
        X = stft(mixture, self.n_fft, self.hop)  # (C, F, T)
        harm, perc = hpss(X, self.kernel_size, self.power, self.margin)
        lo, hi = self.vocal_band
        drums_spec = attenuate_band(perc, sample_rate, self.n_fft, lo, hi, self.drum_band_gain)
        drums = istft(drums_spec, self.n_fft, self.hop, n)
        harmonic = istft(harm, self.n_fft, self.hop, n)
        bass = lowpass(harmonic, sample_rate, self.bass_cutoff, self.bass_order, self.zero_phase)
        mag = np.abs(harm)
        background = repet_sim_background(mag, self.min_similarity,
                                          max(1, round(self.min_distance_s * sample_rate / self.hop)),
                                          self.max_frames)
        fg_mask = 1.0 - np.minimum(background, mag) / (mag + _EPS)
        vocals = istft(harm * fg_mask, self.n_fft, self.hop, n)
        other = (mixture.astype(np.float64) - drums - bass - vocals).astype(np.float32)
        return {"drums": drums, "bass": bass, "other": other, "vocals": vocals}


class HPSSNMF(Separator):
    """HPSS + band-wise NMF pipeline of the course project (seed 003, section 3.2).

    On the mono mixture's STFT magnitude ``S``: HPSS into ``S_p`` and ``S_h``; an NMF with
    ``n_components`` each, restricted to each stem's band: drums on ``S_p`` in ``drums_band``,
    bass on ``S_h`` in ``bass_band``, vocals on ``S_h - bass`` in ``vocals_band``, other on
    ``S_h - bass - vocals`` in ``other_band``. The four NMF reconstructions ``V_j`` give soft masks
    ``V_j^p / sum_k V_k^p`` (``mask_power`` p = 2) on every channel's complex STFT, and the
    inverse STFT keeps the mixture's phase. The seed's final peak normalisation is left out: it
    would change the estimates' scale, which the metrics score.

    The seed names the bands without values; the defaults are ours: bass 0-250 Hz, vocals
    150-5000 Hz (fundamentals and formants of singing), drums and other the whole spectrum.
    """

    name = "hpss_nmf"
    packages = ("librosa", "scikit-learn")
    sources = STEMS
    sample_rate = None
    description = "HPSS + band-restricted NMF per stem (mono analysis), power soft masks"

    def __init__(self, n_fft: int = 2048, hop: int = 512, n_components: int = 8,
                 iterations: int = 100, kernel_size: int = 31, power: float = 2.0,
                 margin: float = 1.0, mask_power: float = 2.0,
                 drums_band: tuple[float, float] = (0.0, 1e9), bass_band: tuple[float, float] = (0.0, 250.0),
                 vocals_band: tuple[float, float] = (150.0, 5000.0),
                 other_band: tuple[float, float] = (0.0, 1e9), seed: int = 0):
        check_stft("hpss_nmf", n_fft, hop)
        check_range("hpss_nmf", "n_components", n_components, 1, 512, integer=True)
        check_range("hpss_nmf", "iterations", iterations, 1, 10000, integer=True)
        check_range("hpss_nmf", "kernel_size", kernel_size, 1, 1001, integer=True)
        self.n_fft, self.hop = int(n_fft), int(hop)
        self.n_components, self.iterations = int(n_components), int(iterations)
        self.kernel_size, self.power, self.margin = int(kernel_size), float(power), float(margin)
        self.mask_power, self.seed = float(mask_power), int(seed)
        self.bands = {"drums": tuple(map(float, drums_band)), "bass": tuple(map(float, bass_band)),
                      "vocals": tuple(map(float, vocals_band)), "other": tuple(map(float, other_band))}

    def params(self) -> dict[str, Any]:
        return {"n_fft": self.n_fft, "hop": self.hop, "n_components": self.n_components,
                "iterations": self.iterations, "kernel_size": self.kernel_size, "power": self.power,
                "margin": self.margin, "mask_power": self.mask_power, "seed": self.seed,
                "bands": {k: list(v) for k, v in self.bands.items()},
                "stereo": "mono analysis, masks applied per channel"}

    def _band_nmf(self, V: np.ndarray, band: np.ndarray) -> np.ndarray:
        out = np.zeros_like(V)
        sub = V[band]
        if band.any() and sub.max() > 0:
            W, H = nmf(sub, self.n_components, iterations=self.iterations, seed=self.seed)
            out[band] = W @ H
        return out

    def _separate(self, mixture, sample_rate, references) -> Estimates:
        n = mixture.shape[1]
        X = stft(mixture, self.n_fft, self.hop)  # (C, F, T)
        mono = np.abs(stft(mixture.mean(axis=0), self.n_fft, self.hop))
        S_h, S_p = hpss(mono, self.kernel_size, self.power, self.margin)

        def bins(stem):
            return band_bins(sample_rate, self.n_fft, *self.bands[stem])

        drums = self._band_nmf(S_p, bins("drums"))
        bass = self._band_nmf(S_h, bins("bass"))
        rest = np.maximum(S_h - bass, 0.0)
        vocals = self._band_nmf(rest, bins("vocals"))
        rest = np.maximum(rest - vocals, 0.0)
        other = self._band_nmf(rest, bins("other"))
        models = {"drums": drums, "bass": bass, "other": other, "vocals": vocals}
        powered = {k: np.asarray(v, dtype=np.float64) ** self.mask_power for k, v in models.items()}
        total = sum(powered.values()) + _EPS
        return {k: istft(X * (p / total)[None].astype(np.float32), self.n_fft, self.hop, n)
                for k, p in powered.items()}
