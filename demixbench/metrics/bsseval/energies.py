"""Step 3 of BSS Eval v4: every frame's energies. A frame's projection through a filter ``v``
has energy ``v' G_t v``, a weighted sum of the frame's own correlations, so ISR, SIR and SAR of
all frames are one matrix product. Each value carries a rounding bound; a frame whose bound is
too large is recomputed by explicit float64 projections in museval's order
(:class:`ExplicitFrames`)."""

from __future__ import annotations

import numpy as np
from scipy import fft as sfft

from .correlations import _FORM_TOL, _GRAM_ROUNDING, _ROUNDING, _channels, _FrameStats


# -- frame energies -------------------------------------------------------------------------------
def _form_weights(v: np.ndarray) -> np.ndarray:
    """For filters ``v`` ``(R, M, L)``: weights ``K`` ``(R, M, M, L)`` such that the energy of
    the projection ``sum_m v[r, m] * a_m`` is ``sum_{m,n,l} R_mn(l) K[r, m, n, l]`` for any
    signals' correlations ``R_mn(l) = sum_i a_m[i] a_n[i + l]`` (l >= 0; the negative lags are
    folded in, hence the factor 2)."""
    lags = v.shape[-1]
    nfft = sfft.next_fast_len(2 * lags, real=True)
    spec = sfft.rfft(v, nfft, axis=-1, workers=-1)
    k = sfft.irfft(spec[:, :, None, :] * spec[:, None, :, :].conj(), nfft, axis=-1,
                   workers=-1)[..., :lags]
    k[..., 1:] *= 2
    return k

def _db(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """museval's ``_safe_db``: +inf for a zero denominator."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den == 0, np.inf, 10 * np.log10(num / den))

class _Energies:
    """The filters' quadratic-form weights, shared by every frame."""

    def __init__(self, v_all: np.ndarray, v_own: np.ndarray, nsrc: int, nchan: int):
        m, _, lags = v_all.shape
        self.nsrc, self.nchan, self.m = nsrc, nchan, m
        self.v_all = v_all
        # forms 0..3: ISR denominator (own projection minus the reference itself), SIR
        # numerator, SIR denominator, SAR numerator; the first two only involve the row's own
        # source's channels, so their weights are computed on those and placed
        rows = np.arange(m)
        chans = (rows // nchan)[:, None] * nchan + np.arange(nchan)  # (rows, nchan)
        own = v_own[rows[:, None], chans]  # (rows, nchan, L)
        own_isr = own.copy()
        own_isr[rows, rows % nchan, 0] -= 1.0
        k_own = _form_weights(np.concatenate([own_isr, own]))  # (2 rows, nchan, nchan, L)
        k = np.zeros((4 * m, m, m, lags))
        for f in range(2):
            k[f * m + rows[:, None, None], chans[:, :, None], chans[:, None, :]] = \
                k_own[f * m:(f + 1) * m]
        k[2 * m:] = _form_weights(np.concatenate([v_all - v_own, v_all]))
        self.k = k.reshape(4 * m, -1)
        self.k_abs = np.abs(k).sum(axis=-1)  # (4M, M, M)
        self.v_abs = np.abs(v_all).sum(axis=-1)  # (rows, M)

    def values(self, corr: np.ndarray, stats: _FrameStats) -> tuple[np.ndarray, np.ndarray]:
        """``(4, nsrc, T)`` SDR, ISR, SIR, SAR of frames with correlations ``corr``
        ``(T, M, 2M, L)``, and the frames whose rounding bound is too large (to recompute)."""
        m, nsrc, nchan = self.m, self.nsrc, self.nchan
        nt = corr.shape[0]
        ss, ee, dd, silent, unsure = stats.derived(corr)
        rr = corr[:, :, :m]
        q = (rr.reshape(nt, -1) @ self.k.T).reshape(nt, 4, m)
        lin = np.einsum("tmra,rma->tr", corr[:, :, m:], self.v_all)  # <projection, estimate>
        norm_s, norm_e = np.sqrt(ss), np.sqrt(ee)
        q_err = _ROUNDING * np.einsum("tm,tn,fmn->tf", norm_s, norm_s, self.k_abs).reshape(nt, 4, m)
        lin_err = _ROUNDING * (norm_s @ self.v_abs.T) * norm_e
        sar_den = ee - 2 * lin + q[:, 3]
        sar_err = q_err[:, 3] + 2 * lin_err + _GRAM_ROUNDING * ee

        def per_source(x):  # (T, M) -> (T, nsrc): energies summed over channels
            return x.reshape(nt, nsrc, nchan).sum(axis=-1)

        num = [per_source(ss), per_source(ss), per_source(q[:, 1]), per_source(q[:, 3])]
        den = [per_source(dd), per_source(q[:, 0]), per_source(q[:, 2]), per_source(sar_den)]
        errs = [q_err[:, 0], q_err[:, 1], q_err[:, 2], q_err[:, 3], sar_err]
        vals = [den[1], num[2], den[2], num[3], den[3]]
        for err, val in zip(errs, vals):
            unsure |= np.any(per_source(err) > _FORM_TOL * val, axis=1)
        out = np.stack([_db(a, b) for a, b in zip(num, den)]).transpose(0, 2, 1)
        out[:, :, silent] = np.nan
        return out, unsure & ~silent

class ExplicitFrames:
    """Frame values by explicit float64 projections of each frame's references through the
    filters, in museval's order of operations: for the frames whose quadratic-form values
    carry too large a rounding bound. The filters' spectra are computed once."""

    def __init__(self, v_all: np.ndarray, v_own: np.ndarray, nsrc: int, nchan: int, width: int):
        m, _, lags = v_all.shape
        self.nsrc, self.nchan, self.width = nsrc, nchan, width
        self.n = width + lags - 1
        self.nfft = sfft.next_fast_len(self.n, real=True)
        self.f_all = sfft.rfft(v_all, self.nfft, axis=-1)  # (rows, M, F)
        # own filters: each row's own source's channels only, (rows, nchan, F)
        own = np.stack([v_own[r, (r // nchan) * nchan:(r // nchan + 1) * nchan] for r in range(m)])
        self.f_own = sfft.rfft(own, self.nfft, axis=-1)

    def values(self, references: np.ndarray, estimates: np.ndarray, start: int) -> np.ndarray:
        """One frame's SDR, ISR, SIR, SAR (``(4, nsrc)``), NaN if museval calls it silent."""
        nsrc, nchan, width, n = self.nsrc, self.nchan, self.width, self.n
        s = _channels(references, start, start + width)
        e = _channels(estimates, start, start + width)
        out = np.full((4, nsrc), np.nan)
        for x in (s, e):  # museval's silence rule, exactly
            if not np.all(np.any(x.reshape(nsrc, nchan, -1).sum(axis=1) != 0, axis=1)):
                return out
        s_spec = sfft.rfft(s, self.nfft, axis=-1)
        p_all = sfft.irfft(np.einsum("rmf,mf->rf", self.f_all, s_spec), self.nfft)[:, :n]
        own_spec = s_spec.reshape(nsrc, 1, nchan, -1).repeat(nchan, axis=1).reshape(
            nsrc * nchan, nchan, -1)  # row r: its own source's channels
        p_own = sfft.irfft(np.einsum("rcf,rcf->rf", self.f_own, own_spec), self.nfft)[:, :n]
        s_true = np.zeros_like(p_all)
        s_true[:, :width] = s
        e_spat = p_own - s_true
        e_interf = p_all - s_true - e_spat
        e_artif = -s_true - e_spat - e_interf
        e_artif[:, :width] += e
        for j in range(nsrc):
            c = slice(j * nchan, (j + 1) * nchan)
            energy = float(np.sum(s_true[c] ** 2))
            out[:, j] = [_db(energy, np.sum((e_spat[c] + e_interf[c] + e_artif[c]) ** 2)),
                         _db(energy, np.sum(e_spat[c] ** 2)),
                         _db(np.sum((s_true[c] + e_spat[c]) ** 2), np.sum(e_interf[c] ** 2)),
                         _db(np.sum((s_true[c] + e_spat[c] + e_interf[c]) ** 2),
                             np.sum(e_artif[c] ** 2))]
        return out
