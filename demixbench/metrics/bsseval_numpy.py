"""BSS Eval v4 in numpy: museval's quantities, computed without museval's repeated work.

museval (v4 mode) fits, for every estimate, 512-tap time-invariant filters on the whole signals
(a least-squares projection onto delayed copies of the references), then, frame by frame,
projects the frame's references through those filters and takes energy ratios. Its time goes to
(1) a dense LU solve of the full Gram system, ``(nsrc * nchan * 512)^2``, once per estimate,
(2) full-length complex FFTs per (reference, estimate, channel) pair to read 512 correlation lags,
and (3) per frame, FFT convolutions per source and channel pair.

Here the same quantities are computed from one pass of correlations:

- **correlations, frame by frame**: for every frame, all lags 0..511 between every reference
  channel and every reference or estimate channel, the signals taken as zero outside the frame
  (museval zero-pads each frame before projecting it). Each frame is cut into ~2000-sample
  blocks (FFT length 2560) whose spectra are multiplied as one batched matrix product per
  frequency; frames are spread over threads (numpy's FFTs and BLAS release the interpreter
  lock; BLAS is held to one thread meanwhile). Where the frames tile the signal (museval's
  default, window = hop) the whole-signal correlations are their sum plus the pairs that
  straddle frame edges (short FFTs of 512 samples either side), so the signals are
  transformed once; otherwise the whole signal is one more "frame". The same pass sums each
  frame's channel energies and the products the SDR and the silence rule need;
- **filters**: in (delay, channel) order the Gram matrix is block Toeplitz. The full system
  is solved by block Levinson (``O(L^2 M^3)`` instead of ``O((L M)^3)``) after scaling every
  channel to unit energy, with iterative refinement against an FFT block-Toeplitz product
  until the relative residual is below 1e-12 (a dense solve's level). The own-reference
  systems (``(nchan L)^2`` each) are solved meanwhile on the other core by numpy's LU.
  A full system on which Levinson and Cholesky both fail is numerically singular (e.g. a
  reference with identical channels): the filters are then not unique and museval's values
  depend on its solver's rounding, so :func:`bss_eval_images_v4` returns None and the caller
  (:func:`demixbench.metrics.bss_eval_v4`) evaluates such inputs with museval itself;
- **frame energies**: a frame's projection through a filter ``v`` has energy ``v' G_t v``, with
  ``G_t`` the frame's Gram matrix, i.e. a sum of the frame's correlations weighted by the
  filter's autocorrelations (computed once). So every frame's ISR, SIR, SAR energies are one
  matrix product of the frames' correlations with the filters' weights; SDR comes from the
  samples. Each value carries a rounding bound; a frame whose bound exceeds 1e-5 of the value
  (filters with large cancelling taps, or SAR above ~90 dB where ``||e - p||^2`` is a small
  difference) is recomputed by explicit float64 projections as museval does.

Memory: at most 32 MB of frame correlations are kept between the correlation pass and the
energies; longer inputs are correlated twice (once for the filters, once for the energies).

Framing, the silence rule (a frame where any reference or any estimate sums to zero over its
channels at every sample is NaN for all sources) and the energy ratios follow museval exactly.

Shape: ``references``, ``estimates``: ``(nsrc, nsamples, nchan)``, any float dtype; they are
converted to float64 block by block, never as a whole.
"""

from __future__ import annotations

import ctypes
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import fft as sfft
from scipy.linalg import cho_factor, cho_solve
from threadpoolctl import threadpool_limits

FILTER_LEN = 512
_EPS = np.finfo(float).eps
_CORR_FFT = 2560  # FFT length of the correlation pass (blocks of at most _CORR_FFT - lags)
_CHUNK_BYTES = 24 << 20  # float64 signal held by one step of the correlation pass
_STORE_BYTES = 32 << 20  # frame correlations kept between the passes; beyond, recomputed
_ROUNDING = 1e-14  # bound on an FFT correlation's rounding, relative to ||a|| ||b||
_FORM_TOL = 1e-5  # largest rounding bound accepted on a frame's energy, relative to it
_GRAM_ROUNDING = 1e-11  # bound on a time-domain inner product's rounding, relative to ||a|| ||b||
_USE_LEVINSON = True  # structured solve of the Gram systems (falls back to dense solves)
# Levinson's relative residual at which refinement stops: each step gains about two orders on
# music (1e-8 -> 1e-10 -> 1e-12); a dense solve reaches about 1e-13. (Stopping at 1e-10 moved
# museval agreement from 1e-7 to 5e-4 dB on an ill-conditioned own-reference system.)
_REFINED = 1e-12


def framing(nsamples: int, win: int, hop: int) -> tuple[np.ndarray, int]:
    """Frame starts and the common frame length, as museval's ``Framing``."""
    if win < nsamples:
        nwin = (nsamples - win + hop) // hop
        return np.arange(nwin) * hop, win
    return np.zeros(1, dtype=int), nsamples


def _put_channels(dst: np.ndarray, x: np.ndarray, start: int, stop: int) -> None:
    """Write ``x[:, start:stop, :]`` (``(nsrc, n, nchan)``) into ``dst`` ``(nsrc * nchan, >= n)``
    as channel signals indexed ``src * nchan + chan``, converted to ``dst``'s dtype."""
    nsrc, _, nchan = x.shape
    n = stop - start
    dst[:, :n].reshape(nsrc, nchan, n)[...] = x[:, start:stop, :].transpose(0, 2, 1)


def _channels(x: np.ndarray, start: int, stop: int) -> np.ndarray:
    out = np.empty((x.shape[0] * x.shape[2], stop - start))
    _put_channels(out, x, start, stop)
    return out


# -- correlations ---------------------------------------------------------------------------------
def _block_plan(width: int, lags: int) -> tuple[int, int, int]:
    """Blocks per frame, block length and FFT length for frames of ``width`` samples."""
    nfft = max(_CORR_FFT, sfft.next_fast_len(2 * lags, real=True))
    nblocks = max(1, -(-width // (nfft - lags)))
    block = -(-width // nblocks)
    return nblocks, block, sfft.next_fast_len(block + lags, real=True)


class _FrameStats:
    """Per-frame sums over the estimates' samples: each estimate channel's energy ``ee``
    ``(T, M)`` and the energy of each estimate's channel sum ``est_sums`` ``(T, nsrc)``.
    The references' energies, their channel sums and the reference-estimate products are the
    zero-lag values of the frame correlations (:meth:`derived`). museval calls a source silent
    in a frame where its channel sum is zero at every sample; values at the level of rounding
    are flagged for an exact recomputation."""

    def __init__(self, nframes: int, nsrc: int, nchan: int):
        m = nsrc * nchan
        self.nsrc, self.nchan, self.m = nsrc, nchan, m
        self.ee = np.zeros((nframes, m))
        self.est_sums = np.zeros((nframes, nsrc))

    def take(self, t: int, part: tuple) -> None:
        self.ee[t] += part[0]
        self.est_sums[t] += part[1]

    @staticmethod
    def measure(blocks: np.ndarray, nsrc: int, nchan: int) -> tuple:
        """The sums over the estimate channels of ``blocks`` (``(P, 2M, n)``)."""
        m = nsrc * nchan
        est = blocks[:, m:]
        ee = np.vecdot(est, est).sum(axis=0)
        sums = ee.reshape(nsrc, nchan).sum(axis=1)
        for c in range(nchan):  # cross-channel products within each source
            for c2 in range(c + 1, nchan):
                sums += 2 * np.vecdot(est[:, c::nchan], est[:, c2::nchan]).sum(axis=0)
        return ee, sums

    def subset(self, rows) -> _FrameStats:
        out = _FrameStats(0, self.nsrc, self.nchan)
        out.ee, out.est_sums = self.ee[rows], self.est_sums[rows]
        return out

    def derived(self, corr: np.ndarray):
        """With the frames' correlations ``corr`` ``(T, M, 2M, L)``: ``ss``, ``ee``, ``dd``
        ``(T, M)``, the frames' silence ``(T,)`` and the frames where rounding could decide the
        silence or ``dd`` (to recompute exactly)."""
        m, nsrc, nchan = self.m, self.nsrc, self.nchan
        nt = corr.shape[0]
        zero = corr[..., 0]  # (T, M, 2M) zero-lag products over the frame
        idx = np.arange(m)
        ss, es, ee = zero[:, idx, idx], zero[:, idx, m + idx], self.ee
        dd = ee - 2 * es + ss
        dd_err = _GRAM_ROUNDING * (ee + ss + 2 * np.sqrt(ee * ss))
        blocks = zero[:, :, :m].reshape(nt, nsrc, nchan, nsrc, nchan)
        src = np.arange(nsrc)
        ref_sums = blocks[:, src, :, src, :].sum(axis=(2, 3)).T  # (T, nsrc)
        sums = np.concatenate([ref_sums, self.est_sums], axis=1)
        scale = np.concatenate([ss.reshape(nt, nsrc, nchan).sum(-1),
                                ee.reshape(nt, nsrc, nchan).sum(-1)], axis=1)
        silent = np.any(scale == 0, axis=1)  # a source with every channel zero
        # a channel sum near zero may be exactly zero (e.g. opposite channels): decided exactly
        unsure = np.any((sums <= _GRAM_ROUNDING * nchan * scale) & (scale > 0), axis=1)
        unsure |= np.any(dd_err > _FORM_TOL * dd, axis=1)
        return ss, ee, dd, silent, unsure & ~silent


def _release_memory() -> None:
    """Hand freed heap memory back to the system (glibc keeps the correlation threads' freed
    blocks in per-thread arenas, which on long tracks adds ~100 MB to the peak RSS)."""
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM = None


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _correlation_job(references, estimates, lo: int, hi: int, owned: int, block: int,
                     nfft: int, lags: int, want_stats: bool):
    """Cross-spectra summed over the blocks of ``[lo, hi)`` (one frame's, or a run of a long
    frame's): block p of each reference channel (zero-padded) against the segment of every
    reference and estimate channel that starts with it and runs ``lags`` further, ``hi``
    being the frame's end or the next run's start plus ``lags``. Returns ``(F, M, 2M)`` and,
    with ``want_stats``, the sums of the first ``owned`` samples."""
    nsrc, _, nchan = references.shape
    m = nsrc * nchan
    nblocks = -(-owned // block)
    seg = block + lags
    # segments, block-major: (blocks, 2M, nfft), zero beyond each segment
    b_in = np.empty((nblocks, 2 * m, nfft))
    b_in[:, :, seg:] = 0.0
    for p in range(nblocks):
        start = lo + p * block
        stop = min(hi, start + seg)
        _put_channels(b_in[p, :m], references, start, stop)
        _put_channels(b_in[p, m:], estimates, start, stop)
        b_in[p, :, stop - start:seg] = 0.0
    # the blocks' first `block` samples partition the owned ones (zero past the frame's end)
    stats = _FrameStats.measure(b_in[:, :, :block], nsrc, nchan) if want_stats else None
    # reference blocks, channel-major, circularly reversed so that their transform is the
    # conjugate one: a_rev[0] = a[0], a_rev[nfft - i] = a[i]
    a_in = np.empty((m, nblocks, nfft))
    a_in[:, :, 0] = b_in[:, :m, 0].T
    a_in[:, :, 1:nfft - block + 1] = 0.0
    a_in[:, :, nfft - block + 1:] = b_in[:, :m, block - 1:0:-1].transpose(1, 0, 2)
    # transforms written straight into frequency-major arrays for the per-frequency products
    nf = nfft // 2 + 1
    b_spec = np.empty((nf, nblocks, 2 * m), dtype=complex)
    a_spec = np.empty((nf, m, nblocks), dtype=complex)
    np.fft.rfft(b_in.reshape(-1, nfft), axis=-1, out=b_spec.reshape(nf, -1).T)
    np.fft.rfft(a_in.reshape(-1, nfft), axis=-1, out=a_spec.reshape(nf, -1).T)
    return np.matmul(a_spec, b_spec), stats


def frame_correlations(references: np.ndarray, estimates: np.ndarray, starts, width: int,
                       lags: int = FILTER_LEN, stats: _FrameStats | None = None) -> np.ndarray:
    """``r[t, m, k, l] = sum_n a_m[n] b_k[n + l]`` over frame ``t`` = ``[starts[t], + width)``,
    the signals taken as zero outside the frame, for ``l = 0..lags-1``.

    ``a`` are the references' channel signals (M of them), ``b`` the references' then the
    estimates' (2M). Returns ``(T, M, 2M, lags)``. Each frame is cut into blocks; block p of
    ``a`` (zero-padded) is correlated with the segment of ``b`` that starts with it and runs
    ``lags`` samples further (cut at the frame's end), by one FFT of length ``>= block + lags``
    (no circular wrap for lags below ``lags``); a frame's cross-spectra are summed over its
    blocks by a batched matrix product per frequency. Frames (or runs of blocks of a long
    frame) are spread over threads. ``stats``, when given, receives the frames' sample sums
    (:class:`_FrameStats`).
    """
    nsrc, _, nchan = references.shape
    m = nsrc * nchan
    starts = [int(s) for s in starts]
    nblocks, block, nfft = _block_plan(width, lags)
    run = max(1, _CHUNK_BYTES // (3 * m * nfft * 8))  # blocks per job
    jobs = []  # (frame, lo, hi, owned samples)
    for t, s in enumerate(starts):
        for p in range(0, nblocks, run):
            own = min(width, (p + run) * block) - p * block
            jobs.append((t, s + p * block, s + min(width, (p + run) * block + lags), own))
    out = np.empty((len(starts), m, 2 * m, lags))
    runs: dict[int, int] = {}
    for t, *_ in jobs:
        runs[t] = runs.get(t, 0) + 1
    whole = {t: n == 1 for t, n in runs.items()}  # frames done in one job (irfft in the job)
    nf = nfft // 2 + 1

    def lags_of(spec):  # cross-spectra (F, M, 2M) -> correlations (M, 2M, lags)
        flat = np.ascontiguousarray(spec.reshape(nf, -1).T)
        return np.fft.irfft(flat, nfft, axis=-1)[:, :lags].reshape(m, 2 * m, lags)

    def work(job):
        t, lo, hi, own = job
        spec, part = _correlation_job(references, estimates, lo, hi, own, block, nfft, lags,
                                      stats is not None)
        return (lags_of(spec) if whole[t] else spec), part

    acc: dict[int, np.ndarray] = {}

    def finish(t, result, part):
        if part is not None:
            stats.take(t, part)
        if whole[t]:
            out[t] = result
            return
        acc[t] = result if t not in acc else acc[t] + result
        runs[t] -= 1
        if runs[t] == 0:  # the last run of this frame is in
            out[t] = lags_of(acc.pop(t))

    workers = _workers()
    with threadpool_limits(1, user_api="blas"):  # the threads, not BLAS, use the cores
        if workers == 1 or len(jobs) == 1:
            for job in jobs:
                finish(job[0], *work(job))
        else:
            with ThreadPoolExecutor(workers) as pool:
                for job, result in zip(jobs, pool.map(work, jobs)):
                    finish(job[0], *result)
    return out


def edge_correlations(references: np.ndarray, estimates: np.ndarray, edges,
                      lags: int = FILTER_LEN) -> np.ndarray:
    """The pairs of samples that straddle the given edges: ``sum_n a_m[n] b_k[n + l]`` over
    ``n < e <= n + l`` for every edge ``e``, summed over edges. ``(M, 2M, lags)``."""
    nsrc, n, nchan = references.shape
    m = nsrc * nchan
    nfft = sfft.next_fast_len(2 * lags, real=True)
    edges = [int(e) for e in edges]
    prod = np.zeros((nfft // 2 + 1, m, 2 * m), dtype=complex)
    for i0 in range(0, len(edges), 32):  # 32 edges at a time: bounded memory on long tracks
        chunk = edges[i0:i0 + 32]
        tails = np.zeros((m, len(chunk), lags))
        segs = np.zeros((2 * m, len(chunk), 2 * lags))
        for i, e in enumerate(chunk):
            lo, hi = max(0, e - lags), min(n, e + lags)
            tails[:, i, lags - (e - lo):] = _channels(references, lo, e)
            _put_channels(segs[:m, i, lags:], references, e, hi)
            _put_channels(segs[m:, i, lags:], estimates, e, hi)
        a_spec = sfft.rfft(tails, nfft, axis=-1).conj()
        b_spec = sfft.rfft(segs, nfft, axis=-1)
        prod += np.matmul(a_spec.transpose(2, 0, 1), b_spec.transpose(2, 1, 0))  # (F, M, 2M)
    return sfft.irfft(prod, nfft, axis=0)[:lags].transpose(1, 2, 0)


def correlations(references: np.ndarray, estimates: np.ndarray, lags: int = FILTER_LEN) -> np.ndarray:
    """Whole-signal ``r[m, k, l] = sum_n a_m[n] b_k[n + l]`` (``(M, 2M, lags)``), as
    :func:`frame_correlations` with one frame."""
    return frame_correlations(references, estimates, [0], references.shape[1], lags)[0]


# -- the Gram systems -----------------------------------------------------------------------------
def gram_matrix(r_refs: np.ndarray) -> np.ndarray:
    """museval's Gram matrix of delayed reference channels plus ``eps I``.

    Rows and columns are ordered (channel signal m, delay a) as museval orders them;
    ``G[(m, a), (n, b)] = <a_m delayed by a, a_n delayed by b> = R_mn(a - b)``.
    """
    m, _, lags = r_refs.shape
    # R_mn(k) for k = -(L-1)..L-1 (index k + L - 1), using R_mn(-k) = R_nm(k)
    seq = np.concatenate([r_refs.transpose(1, 0, 2)[:, :, :0:-1], r_refs], axis=-1)
    # row a of block (m, n) is R_mn(a - b) for b = 0..L-1: a reversed window of the sequence
    windows = np.lib.stride_tricks.sliding_window_view(seq[:, :, ::-1], lags, axis=-1)
    g = np.empty((m, lags, m, lags))
    g[...] = windows[:, :, ::-1].transpose(0, 2, 1, 3)  # window L-1-a holds R(a - b), b = 0..
    g = g.reshape(m * lags, m * lags)
    g[np.diag_indices_from(g)] += _EPS
    return g


def solve_gram(g: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, str]:
    """Solve ``(G + eps I) x = d`` (``g`` already holds the eps) for the columns of ``d``.

    The Gram matrix is symmetric positive (semi-)definite: a Cholesky factorisation solves it
    with half the work of museval's LU. Where it is not numerically positive definite, museval's
    own route is taken: LU, then least squares on ``G`` if LU meets an exactly zero pivot.
    """
    try:
        return cho_solve(cho_factor(g, check_finite=False), d, check_finite=False), "cholesky"
    except np.linalg.LinAlgError:
        pass
    try:
        return np.linalg.solve(g, d), "lu"
    except np.linalg.LinAlgError:
        g = g.copy()
        g[np.diag_indices_from(g)] -= _EPS
        return np.linalg.lstsq(g, d, rcond=None)[0], "lstsq"


class BlockLevinson:
    """Block Levinson factorisation of symmetric positive definite block-Toeplitz systems.

    ``T[a, b] = B(a - b)`` with ``B(-k) = B(k)^T``; ``blocks`` holds ``B(0..L-1)`` as
    ``(S, L, M, M)`` for S systems factorised together. The recursion (Whittle; Wiggins &
    Robinson) grows forward and backward solutions one block at a time, ``O(L^2 M^3)``
    operations instead of the ``O((L M)^3)`` of a dense factorisation, and keeps the backward
    solutions, so that each :meth:`solve` costs ``O(L^2 M^2 R)`` (the iterative refinement's
    solves are cheap). It is only weakly stable: callers refine against :meth:`matvec`.
    """

    def __init__(self, blocks: np.ndarray):
        S, L, M, _ = blocks.shape
        self.shape = (S, L, M)
        # row layout: C[:, :, (L-1-k) M : (L-k) M] = B(k); D[:, :, (k-1) M : k M] = B(k)^T
        self.C = np.ascontiguousarray(blocks[:, ::-1].transpose(0, 2, 1, 3).reshape(S, M, L * M))
        D = np.ascontiguousarray(blocks[:, 1:].transpose(0, 3, 1, 2).reshape(S, M, (L - 1) * M))
        # Z[:, :, :M] holds the forward solution f, Z[:, :, M:] the backward one b one block
        # down, so that Z[:, :(n+1) M] = [[f; 0], [0; b]] and one product updates both
        Z = np.zeros((S, (L + 1) * M, 2 * M))
        self.inv0 = np.linalg.inv(blocks[:, 0])
        Z[:, :M, :M] = self.inv0
        Z[:, M:2 * M, M:] = self.inv0
        self.backward = []  # b of every order n >= 1: (S, (n+1) M, M)
        # the update [f, b] <- [[f; 0], [0; b]] K uses K = [[a, -eb d], [-ef a, d]] with
        # a = (I - eb ef)^-1, d = (I - ef eb)^-1: the inverse of P = [[I, eb], [ef, I]]
        P = np.zeros((S, 2 * M, 2 * M))
        P[:, np.arange(2 * M), np.arange(2 * M)] = 1.0
        for n in range(1, L):
            nm = n * M
            P[:, M:, :M] = self.C[:, :, (L - 1 - n) * M:(L - 1) * M] @ Z[:, :nm, :M]  # ef
            P[:, :M, M:] = D[:, :, :nm] @ Z[:, M:nm + M, M:]  # eb
            K = np.linalg.inv(P)
            f_new = Z[:, :nm + M] @ K[:, :, :M]
            b_new = Z[:, :nm + M] @ K[:, :, M:]
            Z[:, :nm + M, :M] = f_new
            Z[:, M:nm + 2 * M, M:] = b_new
            self.backward.append(b_new)
        # products by FFT: S(k) for k = -(L-1)..L-1 at index k + L - 1, S(-k) = B(k)^T
        seq = np.concatenate([blocks[:, :0:-1].transpose(0, 1, 3, 2), blocks], axis=1)
        self.nfft = sfft.next_fast_len(3 * L - 2, real=True)
        self.seq_f = sfft.rfft(seq, self.nfft, axis=1)  # (S, F, M, M)

    def solve(self, y: np.ndarray) -> np.ndarray:
        """``T^-1 y`` for ``y`` ``(S, L, M, R)``."""
        S, L, M = self.shape
        x = np.zeros((S, L * M, y.shape[-1]))
        x[:, :M] = self.inv0 @ y[:, 0]
        for n, b in enumerate(self.backward, start=1):
            nm = n * M
            row = self.C[:, :, (L - 1 - n) * M:(L - 1) * M]  # B(n), B(n-1), ..., B(1)
            x[:, :nm + M] += b @ (y[:, n] - row @ x[:, :nm])
        return x.reshape(S, L, M, -1)

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """``T x`` for ``x`` ``(S, L, M, R)``."""
        L = self.shape[1]
        xf = sfft.rfft(x, self.nfft, axis=1)
        return sfft.irfft(np.matmul(self.seq_f, xf), self.nfft, axis=1)[:, L - 1:2 * L - 1]


def block_levinson(blocks: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Solve ``T x = y`` by :class:`BlockLevinson` (``blocks`` ``(L, M, M)``, ``y``
    ``(L, M, R)``), without refinement."""
    return BlockLevinson(blocks[None]).solve(y[None])[0]


def _toeplitz_solve(blocks: np.ndarray, y: np.ndarray, accept: float = _REFINED):
    """Solve a Gram system by block Levinson, refined iteratively until its relative residual
    is below ``_REFINED`` or stops halving (a direct solve reaches about 1e-13 on these
    systems). ``None`` where it ends above ``accept``: the caller then factorises the dense
    matrix."""
    if not np.all(np.isfinite(blocks)):
        return None
    # equilibrate: channels scaled to unit energy (D T D x' = D y, x = D x'), which keeps the
    # block-Toeplitz structure and lowers Levinson's error where channel energies differ
    diag = np.diagonal(blocks[0]).copy()
    if np.any(diag <= 0):
        return None
    d = 1.0 / np.sqrt(diag)
    blocks = blocks * d[None, :, None] * d[None, None, :]
    y = y * d[None, :, None]
    scale = np.linalg.norm(y)
    if scale == 0:
        return np.zeros_like(y)
    try:
        with np.errstate(all="ignore"):
            system = BlockLevinson(blocks[None])  # (stacked arrays: faster products here)
            y = y[None]
            x = system.solve(y)
            res = y - system.matvec(x)
            rel = np.linalg.norm(res) / scale
            for _ in range(8):
                if not np.isfinite(rel) or rel < _REFINED:
                    break
                step = x + system.solve(res)
                new_res = y - system.matvec(step)
                new_rel = np.linalg.norm(new_res) / scale
                if not new_rel < rel:
                    break
                halved = new_rel < 0.5 * rel  # keep refining while the residual halves
                x, res, rel = step, new_res, new_rel
                if not halved:
                    break
    except np.linalg.LinAlgError:
        return None
    if not (np.isfinite(rel) and rel <= accept):
        return None
    return x[0] * d[None, :, None]


def projection_filters(r: np.ndarray, nsrc: int, nchan: int, singular: str = "solve"):
    """The time-invariant distortion filters of every estimate channel, as museval fits them,
    from whole-signal correlations ``r`` (``(M, 2M, L)``, :func:`correlations`).

    Returns ``(v_all, v_own, methods)``: ``v_all[row, m, a]`` is the coefficient of reference
    channel ``m`` delayed by ``a`` in the projection of estimate channel ``row`` (rows and
    channels indexed ``src * nchan + chan``) onto all references; ``v_own`` onto its own
    reference only (zero on the other sources' channels); ``methods`` names the solver of the
    full system and of each own-reference system. A numerically singular full system (where
    Levinson and Cholesky both fail) is solved museval's way (LU, least squares) with
    ``singular="solve"``; with ``singular="stop"`` the filters are None and ``methods`` is
    ``["singular"]``.
    """
    m, _, lags = r.shape
    blocks = np.ascontiguousarray(r[:, :m].transpose(2, 0, 1))  # B(k)[m, n] = R_mn(k)
    blocks[0] += _EPS * np.eye(m)
    y = np.ascontiguousarray(r[:, m:].transpose(2, 0, 1))  # y[a, m, row] = <a_m delayed a, b_row>
    d = r[:, m:].transpose(0, 2, 1).reshape(m * lags, m)  # the same in museval's row order
    size = nchan * lags
    own = [slice(j * nchan, (j + 1) * nchan) for j in range(nsrc)]

    def solve_own():
        """The own-reference systems, ``(nchan L)^2`` each, by numpy's LU (museval's own
        solver; numpy's LAPACK calls release the interpreter lock, scipy's do not, and its LU
        is faster here than its Cholesky); singular ones museval's way."""
        out = []
        for j, c in enumerate(own):  # one at a time: (nchan L)^2 matrices, bounded memory
            g, rhs = gram_matrix(r[c, c]), d[j * size:(j + 1) * size, c]
            try:
                out.append((np.linalg.solve(g, rhs), "lu"))
            except np.linalg.LinAlgError:
                if singular == "stop":  # the full system is singular too: not needed
                    return []
                out.append(solve_gram(g, rhs))
        return out

    # the own systems' factorisation runs on one core while the full system's Levinson
    # recursion runs on the other
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(1) as pool:
        own_job = pool.submit(solve_own) if nsrc > 1 else None
        x = _toeplitz_solve(blocks, y) if _USE_LEVINSON else None
        own_solutions = own_job.result() if own_job is not None else []
    if x is not None:
        v_all, methods = x.transpose(2, 1, 0), ["levinson"]
    else:  # the dense matrix is built only when the structured solve does not converge
        g = gram_matrix(r[:, :m])
        if singular == "stop":
            try:
                factor = cho_factor(g, check_finite=False)
            except np.linalg.LinAlgError:
                return None, None, ["singular"]
            sol, method = cho_solve(factor, d, check_finite=False), "cholesky"
        else:
            sol, method = solve_gram(g, d)
        v_all, methods = sol.reshape(m, lags, m).transpose(2, 0, 1), [method]
    if nsrc == 1:
        return v_all, v_all, methods * 2
    v_own = np.zeros_like(v_all)
    for c, (sol, method) in zip(own, own_solutions):
        v_own[c, c] = sol.reshape(nchan, lags, nchan).transpose(2, 0, 1)
        methods.append(method)
    return v_all, v_own, methods


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


def _frame_groups(nframes: int, m: int, lags: int) -> list[slice]:
    per_frame = m * 2 * m * lags * 8
    size = max(1, _STORE_BYTES // per_frame)
    return [slice(t, min(nframes, t + size)) for t in range(0, nframes, size)]


def bss_eval_images_v4(references: np.ndarray, estimates: np.ndarray, win: int, hop: int,
                       lags: int = FILTER_LEN) -> tuple[np.ndarray, dict]:
    """Framewise SDR, ISR, SIR, SAR (``(4, nsrc, nwin)``) with filters fitted on the whole
    signals (museval v4), and solver information. The values are None (and
    ``info["singular"]`` True) where the whole-signal Gram system is numerically singular, so
    that Levinson and Cholesky both fail."""
    nsrc, n, nchan = references.shape
    m = nsrc * nchan
    starts, width = framing(n, win, hop)
    nframes = len(starts)
    groups = _frame_groups(nframes, m, lags)
    # frames that tile the signal (then a remainder) give the whole-signal correlations
    tiled = width >= lags and (nframes == 1 or hop == win)
    kept = None
    if tiled:
        end = int(starts[-1]) + width
        total = np.zeros((m, 2 * m, lags))
        edges = [int(s) for s in starts[1:]]
        if end < n:
            total += frame_correlations(references, estimates, [end], n - end, lags)[0]
            edges.append(end)
        if edges:
            total += edge_correlations(references, estimates, edges, lags)
        for g in groups:
            stats = _FrameStats(g.stop - g.start, nsrc, nchan) if len(groups) == 1 else None
            corr = frame_correlations(references, estimates, starts[g], width, lags, stats)
            total += corr.sum(axis=0)
            if len(groups) > 1:
                del corr
                _release_memory()
            if len(groups) == 1:
                kept = corr, stats
    else:
        total = correlations(references, estimates, lags)
    long_track = len(groups) > 1  # then memory, not time, is what to spare
    if long_track:
        _release_memory()
    v_all, v_own, methods = projection_filters(total, nsrc, nchan, singular="stop")
    if long_track:
        _release_memory()
    if v_all is None:
        # numerically singular (e.g. identical reference channels): the filters are not
        # unique and museval's values are set by its solver's rounding; the caller decides
        return None, {"solvers": methods, "singular": True}
    energies = _Energies(v_all, v_own, nsrc, nchan)
    explicit = None
    out = np.full((4, nsrc, nframes), np.nan)
    recomputed = 0
    for g in groups:
        if kept is not None:
            corr, stats = kept
        else:
            stats = _FrameStats(g.stop - g.start, nsrc, nchan)
            corr = frame_correlations(references, estimates, starts[g], width, lags, stats)
            _release_memory()
        vals, unsure = energies.values(corr, stats)
        if unsure.any() and explicit is None:
            explicit = ExplicitFrames(v_all, v_own, nsrc, nchan, width)
        for t in np.flatnonzero(unsure):
            vals[:, :, t] = explicit.values(references, estimates, int(starts[g][t]))
        recomputed += int(unsure.sum())
        out[:, :, g] = vals
    return out, {"solvers": methods, "recomputed_frames": recomputed, "singular": False}


def bss_eval_images_v3(references: np.ndarray, estimates: np.ndarray, win: int, hop: int,
                       lags: int = FILTER_LEN) -> tuple[np.ndarray, dict]:
    """The same with filters fitted in every frame (museval v3 / mir_eval framewise images):
    each frame's correlations give both its filters and its energies."""
    nsrc, n, nchan = references.shape
    starts, width = framing(n, win, hop)
    out = np.full((4, nsrc, len(starts)), np.nan)
    info: dict = {"solvers": [], "recomputed_frames": 0}
    for g in _frame_groups(len(starts), nsrc * nchan, lags):
        stats = _FrameStats(g.stop - g.start, nsrc, nchan)
        corr = frame_correlations(references, estimates, starts[g], width, lags, stats)
        silent = stats.derived(corr)[3]
        for i, t in enumerate(range(g.start, g.stop)):
            if silent[i]:
                continue
            v_all, v_own, methods = projection_filters(corr[i], nsrc, nchan)
            sub = stats.subset(slice(i, i + 1))
            vals, unsure = _Energies(v_all, v_own, nsrc, nchan).values(corr[i:i + 1], sub)
            if unsure[0]:
                vals[:, :, 0] = ExplicitFrames(v_all, v_own, nsrc, nchan, width).values(
                    references, estimates, int(starts[t]))
                info["recomputed_frames"] += 1
            out[:, :, t] = vals[:, :, 0]
            info["solvers"] = methods
    return out, info
