"""The metrics the Music-Source-Separation-Training (MSST) community reads, as MSST's
``utils/metrics.py`` defines them (the definitions, constants and reference values are in
``shared/reference/msst/msst-metrics-reference.json``; ``tests/test_msst_metrics.py`` checks
every value there to 1e-4 relative):

- ``msst_sdr``: ``10 log10((Σref² + 1e-8) / (Σ(ref − est)² + 1e-8))`` over all channels and
  samples (its ε is 1e-8, uSDR's 1e-7);
- ``msst_si_sdr``: MSST's SI-SDR over channels *and* samples together, ε added per element in
  the projection (not zero-mean, not per channel: it differs from ``si_sdr``);
- ``l1_freq``: ``100 / (1 + 10·mean |(|STFT est| − |STFT ref|)|)``, STFT of 2048 points, hop
  1024, rectangular window, centred with reflect padding;
- ``k_sdr``: that SDR clipped to ±10 dB and rescaled to 0–100;
- ``aura_stft`` and ``aura_mrstft``: through **auraloss** (the library MSST calls; extra
  ``msst``), as MSST calls it;
- ``bleedless`` and ``fullness``: 512-band mel spectrograms (librosa's slaney filters,
  ``n_fft`` 4096, hop 1024, periodic Hann, centred with zero padding) in dB, floored 80 dB
  under each signal's maximum; ``d = dB(est) − dB(ref)``; bleedless ``100 / (1 + mean(d > 0))``
  (energy the estimate has and the reference lacks: bleed), fullness ``100 / (1 + mean(−d | d <
  0))`` (energy the estimate misses);
- ``log_wmse``: log-WMSE through **log-wmse-audio-quality** (the metric's reference
  implementation; extra ``msst``), with MSST's channel pairing (see :func:`log_wmse`);
- ``l1_snr``: minus torch-l1-snr's ``MultiL1SNRDBLoss`` with the package defaults MSST calls it
  with (see :func:`l1_snr`), written here from its definition: torch-l1-snr imports
  torchaudio, which does not load beside CPU torch 2.13, so the package is the test oracle
  (its values in the reference file) rather than a dependency.

They are computed with numpy (the STFTs) and librosa (the mel filterbank), not torch, so
they run wherever demixbench does: numpy's FFT of the same frames gives torch.stft's
magnitudes to float precision. The STFT is taken in blocks of frames, so minutes of audio do
not need gigabytes. bleedless and fullness read one mel spectrogram per signal, kept by the
digest of its samples (up to ``MEL_KEPT_BYTES``): the pair is computed once, and a reference
once for every estimate scored against it (a strategy's steps, other separators).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from functools import lru_cache

import numpy as np

from ..errors import MetricError
from .memo import KeptBytes

EPS = 1e-8
BLOCK = 256  # STFT frames computed at a time


def msst_sdr(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = 44100) -> float:
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    return float(10 * np.log10((np.sum(ref ** 2) + EPS) / (np.sum((ref - est) ** 2) + EPS)))


def msst_si_sdr(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = 44100) -> float:
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    scale = np.sum(est * ref + EPS) / np.sum(ref ** 2 + EPS)
    ref_s = scale * ref
    return float(10 * np.log10(np.sum(ref_s ** 2) / (np.sum((ref_s - est) ** 2) + EPS) + EPS))


def _frames(x: np.ndarray, n_fft: int, hop: int, pad_mode: str):
    """Blocks of centred frames of ``x`` (channels, samples): (channels, frames, n_fft)."""
    pad = n_fft // 2
    xp = np.pad(x, ((0, 0), (pad, pad)), mode=pad_mode)
    count = 1 + (xp.shape[1] - n_fft) // hop
    for start in range(0, count, BLOCK):
        idx = (np.arange(start, min(count, start + BLOCK)) * hop)[:, None] + np.arange(n_fft)
        yield xp[:, idx]


def stft_magnitude(x: np.ndarray, n_fft: int, hop: int, window: np.ndarray,
                   pad_mode: str) -> np.ndarray:
    """|STFT| of ``x`` (channels, samples) as torch.stft(center=True) frames it:
    (channels, n_fft // 2 + 1, frames)."""
    blocks = [np.abs(np.fft.rfft(f * window, axis=-1)) for f in _frames(x, n_fft, hop, pad_mode)]
    return np.concatenate(blocks, axis=1).transpose(0, 2, 1)


def l1_freq(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = 44100) -> float:
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float32).astype(np.float64)
    window = np.ones(2048)
    a = stft_magnitude(est, 2048, 1024, window, "reflect")
    b = stft_magnitude(ref, 2048, 1024, window, "reflect")
    loss = 10 * float(np.mean(np.abs(a - b)))
    return 100 / (1 + loss)


@lru_cache(maxsize=4)
def _mel(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)


MEL_KEPT_BYTES = 128 << 20  # mel spectrograms kept for bleedless/fullness (10 s stereo: 3.5 MB)
_MEL_KEPT = KeptBytes(MEL_KEPT_BYTES, lambda db: db.nbytes)


def _mel_db(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """The floored mel dB spectrogram of ``x`` (channels, samples), read-only, computed once
    per distinct signal while it is among the most recently used ``MEL_KEPT_BYTES``."""
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    key = (hashlib.blake2b(x.view(np.uint8).ravel(), digest_size=16).digest(), x.shape,
           sample_rate)
    db = _MEL_KEPT.get(key)
    if db is None:
        db = _compute_mel_db(x.astype(np.float64), sample_rate)
        db.flags.writeable = False
        _MEL_KEPT.put(key, db)
    return db


def _compute_mel_db(x: np.ndarray, sample_rate: int) -> np.ndarray:
    from scipy.signal import get_window

    mag = stft_magnitude(x, 4096, 1024, get_window("hann", 4096, fftbins=True), "constant")
    mel = np.matmul(_mel(sample_rate, 4096, 512), mag)  # (channels, mels, frames), by BLAS
    db = 20 * np.log10(np.maximum(mel, 1e-10))
    return np.maximum(db, db.max() - 80)


def _mel_difference(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> np.ndarray:
    return _mel_db(estimate, sample_rate) - _mel_db(reference, sample_rate)


def bleedless(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = 44100) -> float:
    d = _mel_difference(reference, estimate, sample_rate)
    pos = d[d > 0]
    return 100 / (1 + (float(np.mean(pos)) if pos.size else 0.0))


def fullness(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = 44100) -> float:
    d = _mel_difference(reference, estimate, sample_rate)
    neg = d[d < 0]
    return 100 / (1 + (-float(np.mean(neg)) if neg.size else 0.0))


K_SDR = 10.0  # MSST's config.training.k_sdr default


def k_sdr(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = 44100) -> float:
    """MSST's bounded rescaling of its SDR to 0-100: ``100 log1p(s + K) / log1p(2K)`` with
    ``s`` the SDR clipped to ``[-K + 1e-6, K]``, K = 10."""
    s = max(min(msst_sdr(reference, estimate), K_SDR), -K_SDR + 1e-6)
    return float(100 * np.log1p(s + K_SDR) / np.log1p(2 * K_SDR))


def _auraloss():
    try:
        import auraloss
        import torch
    except ImportError as exc:
        from ..errors import MetricError

        raise MetricError(f"aura_stft and aura_mrstft need auraloss and torch ({exc}): pip install "
                          "'demixbench[msst]'") from None
    return auraloss, torch


def aura_stft(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = 44100) -> float:
    """MSST's aura_stft through auraloss' STFTLoss (spectral convergence + log magnitude,
    1024-point Hann STFT, hop 256), called as MSST calls it (input = reference, target =
    estimate, the reference in float64): ``100 / (1 + 10 loss)``."""
    auraloss, torch = _auraloss()
    loss = auraloss.freq.STFTLoss(w_log_mag=1.0, w_lin_mag=0.0, w_sc=1.0, device="cpu")
    ref = torch.from_numpy(np.asarray(reference, dtype=np.float64))[None]
    est = torch.from_numpy(np.asarray(estimate, dtype=np.float32))[None]
    with torch.no_grad():
        return 100 / (1 + 10 * float(loss(ref, est)))


def aura_mrstft(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = 44100) -> float:
    """MSST's aura_mrstft through auraloss' MultiResolutionSTFTLoss (1024/2048/4096 points,
    128 mel bands, A-weighted), both signals in float32: ``100 / (1 + 10 loss)``."""
    auraloss, torch = _auraloss()
    loss = auraloss.freq.MultiResolutionSTFTLoss(
        fft_sizes=[1024, 2048, 4096], hop_sizes=[256, 512, 1024], win_lengths=[1024, 2048, 4096],
        scale="mel", n_bins=128, sample_rate=sample_rate, perceptual_weighting=True, device="cpu")
    ref = torch.from_numpy(np.asarray(reference, dtype=np.float32))[None]
    est = torch.from_numpy(np.asarray(estimate, dtype=np.float32))[None]
    with torch.no_grad():
        return 100 / (1 + 10 * float(loss(ref, est)))


def _info(name: str, unit: str, description: str, compute, requires=(), packages=(),
          **parameters):
    from .base import MetricInfo

    # every one is a finite number for a silent estimate (MSST scores it), none for a silent
    # reference (the suite's rule for every metric: NaN with its reason)
    return MetricInfo(name, unit, True, description, "mean", "signal", compute,
                      defined_for_silent_estimate=True,
                      parameters={"definition": "MSST utils/metrics.py", **parameters},
                      requires=tuple(requires), install="'demixbench[msst]'" if requires else "",
                      packages=tuple(packages))


MSST_SDR = _info("msst_sdr", "dB", "MSST's SDR: whole excerpt, all channels and samples, eps "
                 "1e-8 (uSDR's is 1e-7)", msst_sdr, eps=EPS)
MSST_SI_SDR = _info("msst_si_sdr", "dB", "MSST's SI-SDR: channels and samples together, eps per "
                    "element, not zero-mean", msst_si_sdr, eps=EPS)
L1_FREQ = _info("l1_freq", "score", "MSST's l1_freq: 100/(1 + 10 mean |Δ|STFT||), 2048-point "
                "rectangular STFT, hop 1024 (0-100)", l1_freq, n_fft=2048, hop=1024)
BLEEDLESS = _info("bleedless", "score", "MSST's bleedless: 100/(1 + mean dB the estimate has "
                  "above the reference), 512 mel bands (0-100)", bleedless, packages=("librosa",),
                  n_fft=4096, hop=1024, n_mels=512, top_db=80)
FULLNESS = _info("fullness", "score", "MSST's fullness: 100/(1 + mean dB the estimate lacks "
                 "below the reference), 512 mel bands (0-100)", fullness, packages=("librosa",),
                 n_fft=4096, hop=1024, n_mels=512, top_db=80)
K_SDR_METRIC = _info("k_sdr", "score", "MSST's k_sdr: its SDR clipped to [-10, 10] and rescaled "
                     "to 0-100", k_sdr, k=K_SDR, eps=EPS)
AURA_STFT = _info("aura_stft", "score", "MSST's aura_stft: auraloss STFT loss (spectral "
                  "convergence + log magnitude) as 100/(1 + 10 loss) (0-100; needs auraloss)",
                  aura_stft, requires=("auraloss", "torch"), fft_size=1024, hop=256)
AURA_MRSTFT = _info("aura_mrstft", "score", "MSST's aura_mrstft: auraloss multi-resolution mel "
                    "STFT loss, A-weighted, as 100/(1 + 10 loss) (0-100; needs auraloss)",
                    aura_mrstft, requires=("auraloss", "torch"), fft_sizes=[1024, 2048, 4096],
                    n_mels=128)


# -- log-WMSE --------------------------------------------------------------------------------
# log-wmse-audio-quality is the metric's reference implementation (numpy, its hearing-weighting
# filter shipped with it); MSST calls torch-log-wmse, which needs torchaudio (no wheel works
# beside CPU torch 2.13 here) and whose 1.x releases refuse MSST's call. MSST's call puts the
# stereo channels on the *stem* axis, so every mixture channel's level scales every estimate
# channel: the value is the mean over the 4 (mixture channel, estimate channel) pairs.
LOG_WMSE_EPS = 1e-8


def log_wmse(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = 44100, *,
             mixture: np.ndarray) -> float:
    try:
        from log_wmse_audio_quality.constants import (
            ERROR_TOLERANCE_THRESHOLD,
            INTERNAL_SAMPLE_RATE,
            SCALER,
        )
        from log_wmse_audio_quality.freq_weighting_filter import HumanHearingSensitivityFilter
    except ImportError as exc:
        raise MetricError(f"log_wmse needs log-wmse-audio-quality ({exc}): pip install "
                          "'demixbench[msst]'") from None
    if sample_rate != INTERNAL_SAMPLE_RATE:
        import soxr

        reference, estimate, mixture = (soxr.resample(np.asarray(x).T, sample_rate,
                                                      INTERNAL_SAMPLE_RATE, quality="HQ").T
                                        for x in (reference, estimate, mixture))
    filt = HumanHearingSensitivityFilter()
    levels = np.sqrt(np.mean(filt(np.atleast_2d(mixture).astype(np.float32)) ** 2, axis=-1))
    diff = (filt(np.atleast_2d(estimate).astype(np.float32))
            - filt(np.atleast_2d(reference).astype(np.float32)))
    values = []
    for level in levels:
        d = diff / (level + LOG_WMSE_EPS)
        d[np.abs(d) < ERROR_TOLERANCE_THRESHOLD] = 0.0
        values.extend(SCALER * np.log(np.mean(d ** 2, axis=-1) + LOG_WMSE_EPS))
    return float(np.mean(values))


LOG_WMSE = _info("log_wmse", "score", "log-WMSE (MSST's call): -4 ln of the hearing-weighted "
                 "error scaled by the mixture's level; defined for silent targets (needs "
                 "log-wmse-audio-quality)", log_wmse, requires=("log_wmse_audio_quality",),
                 filter="log-wmse-audio-quality 4000 taps",
                 eps=LOG_WMSE_EPS, channel_pairs="mixture x estimate")
LOG_WMSE = replace(LOG_WMSE, needs_mixture=True, defined_for_silent_reference=True)


# -- l1_snr ----------------------------------------------------------------------------------
# torch-l1-snr 0.2.1's defaults, as MSST's call leaves them (the reference file's definition)
L1SNR_EPS = 1e-3  # on the mean absolute values
DBRMS_EPS = 1e-8  # on the mean power: silence reads -80 dB
L1SNR_LMIN = -60.0  # dBRMS below which a reference counts as silent for the level weight
L1SNR_LAMBDA = (0.1, 0.9)  # level-matching weight: minimum and extra range
L1SNR_STFTS = ((512, 128), (1024, 256), (2048, 512))  # (n_fft = window, hop), Hann
L1SNR_MIN_LENGTH = 512


def _l1_ratio_db(error_sum: float, reference_sum: float, count: int) -> float:
    """``10 log10((mean|error| + eps) / (mean|reference| + eps))``."""
    return 10 * np.log10((error_sum / count + L1SNR_EPS) / (reference_sum / count + L1SNR_EPS))


def _level_mismatch(reference: np.ndarray, estimate: np.ndarray) -> float:
    """The adaptive level-matching term ``lambda |L_est - L_ref|`` (levels in dB RMS): lambda
    grows from 0.1 to 1 with the mismatch when the estimate is quieter than a non-silent
    reference."""
    level_ref, level_est = (20 * np.log10(np.sqrt(np.mean(x ** 2) + DBRMS_EPS))
                            for x in (reference, estimate))
    gap = abs(level_est - level_ref)
    quieter = level_ref > max(level_est, L1SNR_LMIN)
    share = min(max(gap / max(level_ref - L1SNR_LMIN, 1e-6), 0.0), 1.0)
    low, extra = L1SNR_LAMBDA
    return (low + quieter * extra * share) * gap


def _stft_l1_ratio_db(reference: np.ndarray, estimate: np.ndarray, n_fft: int, hop: int) -> float:
    """The complex-STFT term at one resolution: the L1 ratio of the real parts plus that of
    the imaginary parts, STFT centred with reflect padding, periodic Hann of unit norm."""
    from scipy.signal import get_window

    window = get_window("hann", n_fft, fftbins=True)
    window /= np.sqrt(np.sum(window ** 2))
    sums = np.zeros(4)  # |Re err|, |Re ref|, |Im err|, |Im ref|
    count = 0
    for fe, fr in zip(_frames(estimate, n_fft, hop, "reflect"),
                      _frames(reference, n_fft, hop, "reflect")):
        e, r = np.fft.rfft(fe * window, axis=-1), np.fft.rfft(fr * window, axis=-1)
        sums += [np.abs(e.real - r.real).sum(), np.abs(r.real).sum(),
                 np.abs(e.imag - r.imag).sum(), np.abs(r.imag).sum()]
        count += r.size
    return _l1_ratio_db(sums[0], sums[1], count) + _l1_ratio_db(sums[2], sums[3], count)


def l1_snr(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = 44100) -> float:
    """MSST's ``l1_snr``: ``-(0.5 T + 0.5 S)`` with T the time-domain L1 ratio in dB plus the
    adaptive level-matching term, S the mean over three STFT resolutions of the complex L1
    ratios (resolutions longer than the signal are left out; with none left, S is the
    time-domain ratio without the level term, as torch-l1-snr falls back)."""
    ref = np.atleast_2d(np.asarray(reference, dtype=np.float64))
    est = np.atleast_2d(np.asarray(estimate, dtype=np.float32)).astype(np.float64)
    err = est - ref
    plain = _l1_ratio_db(np.abs(err).sum(), np.abs(ref).sum(), ref.size)
    time_term = plain + _level_mismatch(ref, est)
    n = ref.shape[-1]
    usable = [(f, h) for f, h in L1SNR_STFTS if n >= f // 2 + 1 and n // h + 1 >= 2]
    if n < L1SNR_MIN_LENGTH or not usable:
        spec_term = plain
    else:
        spec_term = float(np.mean([_stft_l1_ratio_db(ref, est, f, h) for f, h in usable]))
    return float(-(0.5 * time_term + 0.5 * spec_term))


L1_SNR = _info("l1_snr", "dB", "MSST's l1_snr: minus torch-l1-snr's multi-domain L1SNR-dB "
               "loss (time domain with level matching, and 512/1024/2048-point complex STFTs)",
               l1_snr, l1snr_eps=L1SNR_EPS, dbrms_eps=DBRMS_EPS, lmin=L1SNR_LMIN,
               lambda0=L1SNR_LAMBDA[0], delta_lambda=L1SNR_LAMBDA[1],
               n_ffts=[f for f, _ in L1SNR_STFTS], spec_weight=0.5)
