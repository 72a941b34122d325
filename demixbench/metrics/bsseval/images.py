"""Step 4 of BSS Eval v4: the driver, :func:`bss_eval_images_v4` (framewise SDR, ISR, SIR, SAR
with filters fitted on the whole signals), bounding the memory of long tracks: the frames'
correlations, computed for the filters, are kept for the energies up to ``_KEEP_ALL_BYTES``;
the frames beyond (on tracks longer than ~8 minutes) are correlated again, ``_STORE_BYTES`` at
a time."""

from __future__ import annotations

import zlib

import numpy as np

from ..memo import KeptBytes
from .correlations import (
    FILTER_LEN,
    _FrameStats,
    _release_memory,
    correlations,
    edge_correlations,
    frame_correlations,
    framing,
    one_blas_thread,
)
from .energies import ExplicitFrames, _Energies
from .solve import projection_filters

_STORE_BYTES = 32 << 20  # frame correlations computed at a time on tracks longer than below
# frame correlations kept from the filters' pass for the energies' pass, at most: a 5-minute
# 4-stem stereo track needs 157 MB (all kept: half the time of correlating twice); on longer
# ones the first frames' are kept and the rest are correlated again, so that memory stays
# bounded (a 10-minute track: 256 of 314 MB kept, a fifth of the frames correlated twice)
_KEEP_ALL_BYTES = 256 << 20

# The references' own frame correlations of recent calls (with a copy of the references, to
# recognise them exactly): a benchmark scores every separator and strategy step of a track
# against the same references, and their correlations are about half of the correlation
# pass. Only for tracks whose frames are kept in one pass, and bounded by
# REFERENCES_KEPT_BYTES (float32 4-stem stereo: 17 MB for 10 s; up to about 75 s is kept).
REFERENCES_KEPT_BYTES = 128 << 20
_REFERENCES = KeptBytes(REFERENCES_KEPT_BYTES, lambda kept: kept[0].nbytes + kept[1].nbytes)

def _references_key(references: np.ndarray, win: int, hop: int, lags: int) -> tuple:
    sample = np.ascontiguousarray(references.reshape(-1)[::4099])  # a cheap first filter
    return (references.shape, references.dtype.str, win, hop, lags, zlib.crc32(sample))

def _known_correlations(key: tuple, references: np.ndarray) -> np.ndarray | None:
    """The references' own frame correlations from an earlier call, if these are its
    references exactly."""
    kept = _REFERENCES.get(key)
    if kept is not None and np.array_equal(kept[0], references):
        return kept[1]
    return None

def _remember_correlations(key: tuple, references: np.ndarray, own: np.ndarray) -> None:
    if references.nbytes + own.nbytes > _REFERENCES.max_bytes:
        return  # (not copied for nothing)
    # a copy: the caller may change its array later
    _REFERENCES.put(key, (np.array(references), np.ascontiguousarray(own)))

def _frame_bytes(m: int, lags: int) -> int:
    return m * 2 * m * lags * 8  # one frame's correlations, float64

def _frame_groups(nframes: int, m: int, lags: int) -> list[slice]:
    per_frame = _frame_bytes(m, lags)
    if per_frame * nframes <= _KEEP_ALL_BYTES:
        return [slice(0, nframes)]
    size = max(1, _STORE_BYTES // per_frame)
    return [slice(t, min(nframes, t + size)) for t in range(0, nframes, size)]

def bss_eval_images_v4(references: np.ndarray, estimates: np.ndarray, win: int, hop: int,
                       lags: int = FILTER_LEN) -> tuple[np.ndarray, dict]:
    """Framewise SDR, ISR, SIR, SAR (``(4, nsrc, nwin)``) with filters fitted on the whole
    signals (museval v4), and solver information. The values are None (and
    ``info["singular"]`` True) where the whole-signal Gram system is numerically singular, so
    that Levinson and Cholesky both fail.

    BLAS runs on one thread throughout (the steps spread their own work over threads): a
    product on OpenBLAS's thread pool leaves its threads spinning for a while after it, and
    they took a core from the next call's correlation pass (56 -> 90 ms at 15 s)."""
    with one_blas_thread():
        return _images_v4(references, estimates, win, hop, lags)

def _images_v4(references: np.ndarray, estimates: np.ndarray, win: int, hop: int, lags: int):
    nsrc, n, nchan = references.shape
    m = nsrc * nchan
    starts, width = framing(n, win, hop)
    nframes = len(starts)
    groups = _frame_groups(nframes, m, lags)
    # frames that tile the signal (then a remainder) give the whole-signal correlations
    tiled = width >= lags and (nframes == 1 or hop == win)
    kept: dict[int, tuple] = {}  # group -> its frames' correlations and sums, for the energies
    if tiled:
        end = int(starts[-1]) + width
        total = np.zeros((m, 2 * m, lags))
        edges = [int(s) for s in starts[1:]]
        if end < n:
            total += frame_correlations(references, estimates, [end], n - end, lags)[0]
            edges.append(end)
        if edges:
            total += edge_correlations(references, estimates, edges, lags)
        key = known = None
        if len(groups) == 1:
            key = _references_key(references, win, hop, lags)
            known = _known_correlations(key, references)
        kept_bytes = 0
        for i, g in enumerate(groups):
            size = (g.stop - g.start) * _frame_bytes(m, lags)
            keep = len(groups) == 1 or kept_bytes + size <= _KEEP_ALL_BYTES
            stats = _FrameStats(g.stop - g.start, nsrc, nchan) if keep else None
            corr = frame_correlations(references, estimates, starts[g], width, lags, stats,
                                      known=known)
            if key is not None and known is None:
                _remember_correlations(key, references, corr[:, :, :m])
            total += corr.sum(axis=0)
            if keep:
                kept[i] = corr, stats
                kept_bytes += size
            else:
                del corr
                _release_memory()
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
    for i, g in enumerate(groups):
        if i in kept:
            corr, stats = kept.pop(i)  # (each group's memory is freed once used)
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
