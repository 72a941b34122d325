"""Whole-signal SDR variants: SI-SDR and the MDX challenge's uSDR. Pure numpy functions."""

from __future__ import annotations

import numpy as np

_F32_EPS = float(np.finfo(np.float32).eps)
USDR_DELTA = 1e-7


def si_sdr(reference: np.ndarray, estimate: np.ndarray, zero_mean: bool = True) -> np.ndarray:
    """Scale-invariant SDR in dB along the last axis (torchmetrics' convention).

    ``reference`` and ``estimate`` are ``(..., samples)``; the result has shape ``(...)``
    (one value per channel for ``(channels, samples)`` input). With ``zero_mean`` both signals
    are centred first. The same epsilon as torchmetrics on float32 input keeps 0/0 finite;
    silence is handled by the caller's policy (see :mod:`demixbench.metrics.scoring`).
    """
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    if ref.shape != est.shape:
        raise ValueError(f"si_sdr: reference {ref.shape} and estimate {est.shape} differ in shape")
    if zero_mean:
        ref = ref - ref.mean(axis=-1, keepdims=True)
        est = est - est.mean(axis=-1, keepdims=True)
    alpha = ((est * ref).sum(-1, keepdims=True) + _F32_EPS) / ((ref**2).sum(-1, keepdims=True) + _F32_EPS)
    target = alpha * ref
    noise = target - est
    ratio = ((target**2).sum(-1) + _F32_EPS) / ((noise**2).sum(-1) + _F32_EPS)
    return 10.0 * np.log10(ratio)


def usdr(reference: np.ndarray, estimate: np.ndarray, delta: float = USDR_DELTA) -> float:
    """Utterance-level SDR of the Music Demixing challenge, in dB.

    ``10 log10((sum s^2 + delta) / (sum (s - s_hat)^2 + delta))`` over all channels and samples
    of the whole signal; tracks are then averaged (mean), not medianed.
    """
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    if ref.shape != est.shape:
        raise ValueError(f"usdr: reference {ref.shape} and estimate {est.shape} differ in shape")
    num = float(np.sum(ref**2)) + delta
    den = float(np.sum((ref - est) ** 2)) + delta
    return float(10.0 * np.log10(num / den))
