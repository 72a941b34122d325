"""Multichannel Wiener filtering: the SiSEC 2018 MWF oracle's filter and an EM post-filter.

The local Gaussian model (Duong, Vincent & Gribonval 2010; Nugraha, Liutkus & Vincent 2016):
the STFT of source ``j`` at bin ``(f, t)`` is a zero-mean complex Gaussian vector over the
channels with covariance ``v_j(f, t) R_j(f)``, where ``v_j`` is a power spectral density
(PSD) and ``R_j`` a spatial covariance matrix. Given those, the posterior mean of source ``j``
given the mixture ``x`` is

    y_j = v_j R_j (sum_k v_k R_k)^-1 x.

Estimating ``v_j`` and ``R_j`` from current estimates ``y_j`` (M-step) and re-filtering (E-step)
is one EM iteration. With ``v`` and ``R`` taken from the true stems this is the MWF oracle; taken
from any separator's output it is the post-filter the seeds switch on and off.

M-step, per source: ``v_j = mean over channels of |y_j|^2`` and
``R_j(f) = sum_t y_j y_j^H / (eps + sum_t v_j)``. The posterior covariance term of full EM is left
out (as in most music demixing systems), so an iteration costs one pass over the bins.

Arrays are ``(channels, bins, frames)`` complex per source, as :func:`stft` returns them.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import istft as _scipy_istft
from scipy.signal import stft as _scipy_stft

from ..errors import SeparatorError

_FRAME_CHUNK = 512  # frames per block of the E-step, bounds the (F, T, C, C) temporaries


def stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """``(channels, samples)`` -> ``(channels, bins, frames)`` complex128, Hann window."""
    if x.shape[-1] < n_fft:
        x = np.pad(x, ((0, 0), (0, n_fft - x.shape[-1])))
    return _scipy_stft(np.asarray(x, dtype=np.float64), nperseg=n_fft, noverlap=n_fft - hop)[-1]


def istft(spec: np.ndarray, n_fft: int, hop: int, length: int) -> np.ndarray:
    """Inverse of :func:`stft`, cut or zero-padded to ``length`` samples, float32."""
    out = _scipy_istft(spec, nperseg=n_fft, noverlap=n_fft - hop)[1]
    if out.shape[-1] < length:
        out = np.pad(out, ((0, 0), (0, length - out.shape[-1])))
    return np.ascontiguousarray(out[:, :length], dtype=np.float32)


def psd_and_covariance(specs: list[np.ndarray], eps: float = 1e-10):
    """M-step. ``specs``: one ``(C, F, T)`` STFT per source.

    Returns ``v`` ``(J, F, T)`` and ``R`` ``(J, F, C, C)``.
    """
    v = np.stack([np.mean(np.abs(s) ** 2, axis=0) for s in specs])
    R = []
    for j, s in enumerate(specs):
        # sum over frames of the outer products y y^H, per bin: (F, C, C)
        outer = np.einsum("aft,bft->fab", s, np.conj(s))
        R.append(outer / (eps + v[j].sum(axis=1))[:, None, None])
    return v, np.stack(R)


def filter_mixture(x: np.ndarray, v: np.ndarray, R: np.ndarray, eps: float = 1e-10) -> list[np.ndarray]:
    """E-step: posterior means ``v_j R_j (sum_k v_k R_k + eps I)^-1 x`` for every source.

    ``x`` ``(C, F, T)``, ``v`` ``(J, F, T)``, ``R`` ``(J, F, C, C)``. Returns ``J`` arrays like ``x``.
    """
    n_src = v.shape[0]
    C, F, T = x.shape
    out = [np.empty_like(x) for _ in range(n_src)]
    # regularise relative to the data's scale, so silence (v == 0 everywhere) gives zeros
    eye = np.eye(C)[None, None]
    for t0 in range(0, T, _FRAME_CHUNK):
        t1 = min(T, t0 + _FRAME_CHUNK)
        vb = v[:, :, t0:t1]  # (J, F, t)
        cov = np.einsum("jft,jfab->ftab", vb, R)  # (F, t, C, C)
        load = eps * np.trace(cov, axis1=2, axis2=3).real / C + 1e-30
        inv = np.linalg.inv(cov + load[..., None, None] * eye)
        xb = np.transpose(x[:, :, t0:t1], (1, 2, 0))  # (F, t, C)
        w = np.einsum("ftab,ftb->fta", inv, xb)  # Cxx^-1 x
        for j in range(n_src):
            yj = vb[j][..., None] * np.einsum("fab,ftb->fta", R[j], w)
            out[j][:, :, t0:t1] = np.transpose(yj, (2, 0, 1))
    return out


def em_refine(x: np.ndarray, specs: list[np.ndarray], iterations: int = 1,
              eps: float = 1e-10) -> list[np.ndarray]:
    """``iterations`` rounds of (M-step from the current estimates, E-step on ``x``)."""
    if iterations < 1:
        raise SeparatorError(f"wiener: iterations must be >= 1, got {iterations}")
    for _ in range(iterations):
        v, R = psd_and_covariance(specs, eps)
        specs = filter_mixture(x, v, R, eps)
    return specs


def wiener_postfilter(mixture: np.ndarray, estimates: dict[str, np.ndarray], *,
                      iterations: int = 1, n_fft: int = 4096, hop: int = 1024,
                      sum_to_mix: bool = False) -> dict[str, np.ndarray]:
    """Refine time-domain ``estimates`` of ``mixture`` by multichannel Wiener EM.

    Returns estimates of the same shapes. ``sum_to_mix`` spreads what the filtered estimates
    miss of the mixture (the STFT round trip and the regularisation leave about -100 dB) evenly
    over the sources, so that they sum to the mixture to float precision.
    """
    if hop <= 0 or n_fft <= 0 or hop > n_fft:
        raise SeparatorError(f"wiener: need 0 < hop <= n_fft, got n_fft={n_fft}, hop={hop}")
    names = list(estimates)
    n = mixture.shape[-1]
    x = stft(mixture, n_fft, hop)
    specs = em_refine(x, [stft(estimates[k], n_fft, hop) for k in names], iterations)
    out = {k: istft(s, n_fft, hop, n) for k, s in zip(names, specs)}
    if sum_to_mix:
        residual = (mixture.astype(np.float64) - np.sum([out[k] for k in names], axis=0,
                                                          dtype=np.float64)) / len(names)
        out = {k: (out[k] + residual).astype(np.float32) for k in names}
    return out
