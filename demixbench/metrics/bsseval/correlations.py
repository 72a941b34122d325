"""Step 1 of BSS Eval v4: correlations of every reference channel with every reference and
estimate channel, for lags 0..511, frame by frame (the signals taken as zero outside the frame,
as museval zero-pads each frame), plus the pairs that straddle frame edges, so that the
whole-signal correlations are the frames' sum. Frames run on threads (numpy's FFTs and BLAS
release the interpreter lock; BLAS is held to one thread meanwhile); the same pass gathers the
per-frame sums the SDR and the silence rule need (:class:`_FrameStats`)."""

from __future__ import annotations

import ctypes
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import fft as sfft
from threadpoolctl import ThreadpoolController

FILTER_LEN = 512

_CORR_FFT = 2560  # FFT length of the correlation pass (blocks of at most _CORR_FFT - lags)

_CHUNK_BYTES = 24 << 20  # float64 signal held by one step of the correlation pass

_ROUNDING = 1e-14  # bound on an FFT correlation's rounding, relative to ||a|| ||b||

_FORM_TOL = 1e-5  # largest rounding bound accepted on a frame's energy, relative to it
_GRAM_ROUNDING = 1e-11  # bound on a time-domain inner product's rounding, relative to ||a|| ||b||

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

_CONTROLLER: ThreadpoolController | None = None

def one_blas_thread():
    """A context in which BLAS uses one thread (the caller's threads use the cores). The
    loaded libraries are found once per process: ``threadpool_limits`` looks them up on every
    call, which costs ~2 ms (it reads the process's memory map)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        import scipy.linalg  # noqa: F401  (its BLAS, too, is loaded before the lookup)

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")

def _workers() -> int:
    """Threads of the correlation pass: up to 4, never more than the cores or the thread budget
    ``OMP_NUM_THREADS`` gives (a Dask worker sets it to its ``--threads-per-worker``, so that
    workers sharing a machine do not oversubscribe its cores)."""
    budget = os.environ.get("OMP_NUM_THREADS", "")
    limit = int(budget) if budget.isdigit() and int(budget) > 0 else 4
    return max(1, min(4, limit, os.cpu_count() or 1))

def _correlation_job(references, estimates, lo: int, hi: int, owned: int, block: int,
                     nfft: int, lags: int, want_stats: bool, with_references: bool = True):
    """Cross-spectra summed over the blocks of ``[lo, hi)`` (one frame's, or a run of a long
    frame's): block p of each reference channel (zero-padded) against the segment of every
    reference and estimate channel that starts with it and runs ``lags`` further, ``hi``
    being the frame's end or the next run's start plus ``lags``. Returns ``(F, M, 2M)``
    (``(F, M, M)``, the estimates' only, without ``with_references``) and, with
    ``want_stats``, the sums of the first ``owned`` samples."""
    nsrc, _, nchan = references.shape
    m = nsrc * nchan
    nblocks = -(-owned // block)
    seg = block + lags
    first = 0 if with_references else m  # the first channel signal taken as a segment
    # segments, block-major: (blocks, 2M, nfft), zero beyond each segment; without
    # with_references the reference rows hold only each block (what a_in needs)
    b_in = np.empty((nblocks, 2 * m, nfft))
    b_in[:, :, seg:] = 0.0
    for p in range(nblocks):
        start = lo + p * block
        stop = min(hi, start + seg)
        _put_channels(b_in[p, :m], references, start, stop if with_references
                      else min(stop, start + block))
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
    b_spec = np.empty((nf, nblocks, 2 * m - first), dtype=complex)
    a_spec = np.empty((nf, m, nblocks), dtype=complex)
    np.fft.rfft(b_in[:, first:].reshape(-1, nfft), axis=-1, out=b_spec.reshape(nf, -1).T)
    np.fft.rfft(a_in.reshape(-1, nfft), axis=-1, out=a_spec.reshape(nf, -1).T)
    # the references' and the estimates' products apart, so that the estimates' are the same
    # bits with or without the references'
    if not with_references:
        return np.matmul(a_spec, b_spec), stats
    out = np.empty((nf, m, 2 * m), dtype=complex)
    np.matmul(a_spec, b_spec[:, :, :m], out=out[:, :, :m])
    np.matmul(a_spec, b_spec[:, :, m:], out=out[:, :, m:])
    return out, stats

def frame_correlations(references: np.ndarray, estimates: np.ndarray, starts, width: int,
                       lags: int = FILTER_LEN, stats: _FrameStats | None = None,
                       known: np.ndarray | None = None) -> np.ndarray:
    """``r[t, m, k, l] = sum_n a_m[n] b_k[n + l]`` over frame ``t`` = ``[starts[t], + width)``,
    the signals taken as zero outside the frame, for ``l = 0..lags-1``.

    ``a`` are the references' channel signals (M of them), ``b`` the references' then the
    estimates' (2M). Returns ``(T, M, 2M, lags)``. Each frame is cut into blocks; block p of
    ``a`` (zero-padded) is correlated with the segment of ``b`` that starts with it and runs
    ``lags`` samples further (cut at the frame's end), by one FFT of length ``>= block + lags``
    (no circular wrap for lags below ``lags``); a frame's cross-spectra are summed over its
    blocks by a batched matrix product per frequency. Frames (or runs of blocks of a long
    frame) are spread over threads. ``stats``, when given, receives the frames' sample sums
    (:class:`_FrameStats`). ``known``, when given, holds the references' own correlations of
    these frames (``(T, M, M, lags)``, from an earlier call with the same references): only the
    estimates' are computed, the same bits as without it.
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
    if known is not None:
        out[:, :, :m] = known

    def lags_of(spec):  # cross-spectra (F, M, 2M or M) -> correlations (M, 2M or M, lags)
        # (along the frequency axis as it lies: a transposed copy first took twice as long)
        return np.fft.irfft(spec.reshape(nf, -1), nfft, axis=0)[:lags].T.reshape(m, -1, lags)

    def work(job):
        t, lo, hi, own = job
        spec, part = _correlation_job(references, estimates, lo, hi, own, block, nfft, lags,
                                      stats is not None, with_references=known is None)
        return (lags_of(spec) if whole[t] else spec), part

    cols = slice(0, 2 * m) if known is None else slice(m, 2 * m)  # the columns computed

    acc: dict[int, np.ndarray] = {}

    def finish(t, result, part):
        if part is not None:
            stats.take(t, part)
        if whole[t]:
            out[t, :, cols] = result
            return
        acc[t] = result if t not in acc else acc[t] + result
        runs[t] -= 1
        if runs[t] == 0:  # the last run of this frame is in
            out[t, :, cols] = lags_of(acc.pop(t))

    workers = _workers()
    with one_blas_thread():  # the threads, not BLAS, use the cores
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
