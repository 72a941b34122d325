"""BSS Eval v4 on torch (``backend="torch"``, ``"torch:cpu"``, ``"torch:cuda[:N]"``), so that
workers with a GPU score on it.

The same quantities as museval (images mode, 512-tap time-invariant filters fitted on the whole
signals, framewise energies), computed the direct way, which suits a GPU: everything in float64,

1. the references' and estimates' spectra (one zero-padded FFT per channel), their cross-spectra
   and, by inverse FFT, every correlation lag ``-(L-1)..L-1``;
2. the Gram matrix of the references' delayed copies (block Toeplitz, built by indexing the
   lags) and the projection filters of every estimate, on all references at once and on its own
   reference, by dense solves (``G + eps I``, museval's regularisation);
3. for every frame, the frame's references (zero outside it) projected through the filters by
   FFT convolution, frames batched, and the four energy ratios from those projections.

The numpy backend (:mod:`.images`) is faster on a CPU (it never forms the projections); this one
agrees with it within 1e-3 dB on every frame (tests/test_bsseval_torch.py) and hands the inputs
whose Gram system is singular (a reference with identical channels) back to it.

Shape: ``(nsrc, nsamples, nchan)`` for both; returns ``(4, nsrc, nwin)`` (SDR, ISR, SIR, SAR).
"""

from __future__ import annotations

import numpy as np

from .correlations import FILTER_LEN, framing

_FRAME_BYTES = 256 << 20  # complex spectra held by one batch of frames


def torch_device(backend: str) -> str:
    """The device of ``"torch"`` (auto), ``"torch:cpu"``, ``"torch:cuda[:N]"``, picked as the
    separators pick theirs (a CUDA request without CUDA runs on the CPU)."""
    from ...device import pick_device

    requested = backend.partition(":")[2] or "auto"
    device, _ = pick_device(requested)
    return "cpu" if device == "mps" else device  # MPS has no float64


def _next_pow2(n: int) -> int:
    return 1 << (int(n) - 1).bit_length()


def bss_eval_images_v4_torch(references: np.ndarray, estimates: np.ndarray, win: int, hop: int,
                             device: str = "cpu") -> np.ndarray | None:
    """``(4, nsrc, nwin)`` values in dB, or None when the Gram system is singular."""
    import torch

    nsrc, n, nchan = references.shape
    m, taps = nsrc * nchan, FILTER_LEN
    dev = torch.device(device)
    # channel signals indexed src * nchan + chan
    refs = torch.as_tensor(np.ascontiguousarray(references.transpose(0, 2, 1)), device=dev,
                           dtype=torch.float64).reshape(m, n)
    ests = torch.as_tensor(np.ascontiguousarray(estimates.transpose(0, 2, 1)), device=dev,
                           dtype=torch.float64).reshape(m, n)
    filters_all, filters_own = _filters(refs, ests, nsrc, nchan, taps)
    if filters_all is None:
        return None
    starts, width = framing(n, win, hop)
    out = torch.full((4, nsrc, len(starts)), float("nan"), dtype=torch.float64, device=dev)
    nfft = _next_pow2(width + taps - 1)
    # filters' spectra: all references -> (nsrc estimates, M, nchan out, F); own reference ->
    # (nsrc, nchan in, nchan out, F)
    spec_all = torch.fft.rfft(filters_all, nfft)
    spec_own = torch.fft.rfft(filters_own, nfft)
    per_frame = 3 * m * (nfft // 2 + 1) * 16
    batch = max(1, _FRAME_BYTES // per_frame)
    for lo in range(0, len(starts), batch):
        idx = range(lo, min(len(starts), lo + batch))
        frame_refs = torch.stack([refs[:, starts[t]:starts[t] + width] for t in idx])
        frame_ests = torch.stack([ests[:, starts[t]:starts[t] + width] for t in idx])
        out[:, :, lo:lo + len(idx)] = _frame_ratios(frame_refs, frame_ests, spec_all, spec_own,
                                                     nsrc, nchan, nfft, taps)
    return out.cpu().numpy()


def _filters(refs, ests, nsrc: int, nchan: int, taps: int):
    """Projection filters ``(nsrc, M, nchan, L)`` on every reference and ``(nsrc, nchan, nchan,
    L)`` on each estimate's own reference: ``filter[j, in, out, d]`` weighs reference channel
    ``in`` delayed by ``d`` in the projection of estimate ``j``'s channel ``out``."""
    import torch

    m, n = refs.shape
    nfft = _next_pow2(n + taps - 1)
    ref_spec = torch.fft.rfft(refs, nfft)
    est_spec = torch.fft.rfft(ests, nfft)
    # r[a, b, k] = sum_t a[t] b[t + k], k taken modulo nfft
    rr = torch.fft.irfft(ref_spec.conj()[:, None] * ref_spec[None], nfft)
    lag = torch.arange(taps, device=refs.device)
    # G[(a, d), (b, e)] = sum_t a[t - d] b[t - e] = r[a, b, d - e]
    diff = (lag[:, None] - lag[None, :]) % nfft
    gram = rr[:, :, diff].permute(0, 2, 1, 3).reshape(m * taps, m * taps)
    del rr
    # D[(a, d), (j, c)] = sum_t a[t - d] est_jc[t] = r[a, est_jc, d]
    re = torch.fft.irfft(ref_spec.conj()[:, None] * est_spec[None], nfft)[..., :taps]
    rhs = re.permute(0, 2, 1).reshape(m * taps, m)
    eps = torch.finfo(torch.float64).eps
    eye = torch.eye(m * taps, dtype=gram.dtype, device=gram.device)
    try:
        full = torch.linalg.solve(gram + eps * eye, rhs)
    except torch.linalg.LinAlgError:
        return None, None
    # own reference: the (nchan L) diagonal block of source j, its rows of D for estimate j
    blocks = gram.reshape(nsrc, nchan * taps, nsrc, nchan * taps)
    own_gram = torch.stack([blocks[j, :, j] for j in range(nsrc)])
    rows = rhs.reshape(nsrc, nchan * taps, nsrc, nchan)
    own_rhs = torch.stack([rows[j, :, j] for j in range(nsrc)])
    eye_own = torch.eye(nchan * taps, dtype=gram.dtype, device=gram.device)
    try:
        own = torch.linalg.solve(own_gram + eps * eye_own, own_rhs)
    except torch.linalg.LinAlgError:
        return None, None
    if not (torch.isfinite(full).all() and torch.isfinite(own).all()):
        return None, None
    # (M, L, nsrc, nchan) -> (nsrc, M, nchan, L); (nsrc, nchan, L, nchan) -> (nsrc, nchan, nchan, L)
    filters_all = full.reshape(m, taps, nsrc, nchan).permute(2, 0, 3, 1).contiguous()
    filters_own = own.reshape(nsrc, nchan, taps, nchan).permute(0, 1, 3, 2).contiguous()
    return filters_all, filters_own


def _frame_ratios(frame_refs, frame_ests, spec_all, spec_own, nsrc: int, nchan: int, nfft: int,
                  taps: int):
    """SDR, ISR, SIR, SAR ``(4, nsrc, T)`` of frames ``(T, M, width)`` (NaN in silent frames)."""
    import torch

    nt, m, width = frame_refs.shape
    length = width + taps - 1
    ref_spec = torch.fft.rfft(frame_refs, nfft)  # (T, M, F)
    # projection of each estimate on all references: sum over reference channels
    proj_all = torch.fft.irfft(torch.einsum("tif,jiof->tjof", ref_spec, spec_all), nfft)
    own_spec = ref_spec.reshape(nt, nsrc, nchan, -1)
    proj_own = torch.fft.irfft(torch.einsum("tjif,jiof->tjof", own_spec, spec_own), nfft)
    proj_all, proj_own = proj_all[..., :length], proj_own[..., :length]
    pad = torch.zeros(nt, nsrc, nchan, taps - 1, dtype=frame_refs.dtype,
                      device=frame_refs.device)
    s_true = torch.cat([frame_refs.reshape(nt, nsrc, nchan, width), pad], dim=-1)
    est = torch.cat([frame_ests.reshape(nt, nsrc, nchan, width), pad], dim=-1)

    def energy(x):
        return (x * x).sum(dim=(-1, -2))  # (T, nsrc)

    e_spat = proj_own - s_true
    e_interf = proj_all - s_true - e_spat
    e_artif = est - s_true - e_spat - e_interf
    values = torch.stack([
        _db(energy(s_true), energy(e_spat + e_interf + e_artif)),
        _db(energy(s_true), energy(e_spat)),
        _db(energy(s_true + e_spat), energy(e_interf)),
        _db(energy(s_true + e_spat + e_interf), energy(e_artif)),
    ])  # (4, T, nsrc)
    silent = (_silent(frame_refs, nsrc, nchan) | _silent(frame_ests, nsrc, nchan))
    values[:, silent] = float("nan")
    return values.permute(0, 2, 1)


def _db(num, den):
    import torch

    return torch.where(den == 0, torch.full_like(num, float("inf")),
                       10 * torch.log10(num / den))


def _silent(frames, nsrc: int, nchan: int):
    """Frames ``(T,)`` where some source's channel sum is zero at every sample (museval)."""
    sums = frames.reshape(frames.shape[0], nsrc, nchan, -1).sum(dim=2)
    return (sums == 0).all(dim=-1).any(dim=-1)
