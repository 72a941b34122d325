"""BSS Eval v4 (images mode, 512-tap time-invariant filters, framewise), as museval computes it.

Three backends with one signature, the drop-in one of ``museval.evaluate``:

- ``"numpy"`` (default): this package's implementation, the same quantities without museval's
  repeated work, in four steps, one module each: :mod:`.correlations`, :mod:`.solve` (the
  projection filters), :mod:`.energies` (every frame's energies) and :mod:`.images` (the
  driver). Inputs whose Gram system is numerically singular (a reference with identical
  channels) have no unique filters; for them museval's values are reproduced by running museval;
- ``"torch"`` (``"torch:cpu"``, ``"torch:cuda[:N]"``): the same algorithm on torch, for
  workers with a GPU (:mod:`.torch_backend`);
- ``"museval"``: museval's own ``metrics`` module, the reference implementation, loaded by file
  so that museval's package ``__init__`` (which imports musdb -> stempeg and needs an ffmpeg
  binary) is never executed.

How the numpy backend computes. museval (v4 mode) fits, for every estimate, 512-tap
time-invariant filters on the whole signals
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
  and the own-reference systems (stacked, on the other core meanwhile) are factorised by
  block Levinson (``O(L^2 M^3)`` instead of ``O((L M)^3)``) after scaling every channel to
  unit energy, and solved by conjugate gradients against an FFT block-Toeplitz product,
  preconditioned by the factorisation's Gohberg-Semencul inverse, until the relative residual
  is below 1e-12 (a dense solve's level). The factorisations depend on the references only
  and are kept (by the digest of the Gram blocks) for the next estimate of the same track.
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

Memory: up to 256 MB of frame correlations (a 5-minute 4-stem stereo track needs 157 MB) are kept
between the correlation pass and the energies; longer inputs are correlated twice (once for the
filters, once for the energies), 32 MB of frames at a time.

Framing, the silence rule (a frame where any reference or any estimate sums to zero over its
channels at every sample is NaN for all sources) and the energy ratios follow museval exactly.

Shape: ``references``, ``estimates``: ``(nsrc, nsamples, nchan)``, any float dtype; they are
converted to float64 block by block, never as a whole.
"""


from __future__ import annotations

import contextvars
import importlib.util
import sys
import warnings
from collections.abc import Callable
from functools import lru_cache
from types import ModuleType

import numpy as np

from ...errors import MetricError


@lru_cache(maxsize=1)
def _museval_metrics() -> ModuleType:
    name = "_demixbench_museval_metrics"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec("museval")
    if spec is None or not spec.submodule_search_locations:
        raise MetricError("BSS Eval v4 needs museval: pip install museval")
    path = f"{list(spec.submodule_search_locations)[0]}/metrics.py"
    mspec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(mspec)
    sys.modules[name] = module
    mspec.loader.exec_module(module)
    return module


def _pad_or_truncate(references: np.ndarray, estimates: np.ndarray) -> np.ndarray:
    """Bring estimates to the references' length, as museval.evaluate does."""
    n = references.shape[1]
    if estimates.shape[1] > n:
        return estimates[:, :n]
    if estimates.shape[1] < n:
        return np.pad(estimates, ((0, 0), (0, n - estimates.shape[1]), (0, 0)))
    return estimates


BACKENDS = ("numpy", "museval", "torch")

# told (one line) before a group is handed to museval's own solver, which can take minutes
HANDOVER_NOTICE: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "bss_eval_handover_notice", default=None)


def _silent_sources(x: np.ndarray) -> list[int]:
    """Sources whose channels sum to zero at every sample (museval's notion of silent)."""
    ones = np.ones(x.shape[-1], dtype=x.dtype)
    return [i for i in range(x.shape[0]) if not np.any(x[i] @ ones)]


def bss_eval_v4(references: np.ndarray, estimates: np.ndarray, win: int = 44100, hop: int = 44100,
                backend: str = "numpy"):
    """Framewise BSS Eval v4 SDR, ISR, SIR, SAR, exactly as ``museval.evaluate``.

    Shape: ``references`` and ``estimates`` are ``(nsrc, nsamples, nchan)`` (estimates are cut
    or zero-padded to the references' length). Returns ``(SDR, ISR, SIR, SAR)``, each
    ``(nsrc, nwin)`` in dB, NaN in every frame where any reference or estimate is silent.
    A reference or estimate that is silent over the whole signal raises :class:`MetricError`
    (the projection is undefined); :func:`demixbench.metrics.score_track` applies the suite's
    silence policy before calling this.
    """
    if backend not in BACKENDS and not backend.startswith("torch:"):
        raise MetricError(f"unknown BSS Eval backend {backend!r}; use one of "
                          f"{', '.join(BACKENDS)} (torch:cpu, torch:cuda[:N] pick a device)")
    references = np.atleast_3d(np.asarray(references))
    estimates = np.atleast_3d(np.asarray(estimates))
    if references.ndim != 3 or estimates.ndim != 3:
        raise MetricError("bss_eval_v4: expected arrays shaped (nsrc, nsamples, nchan)")
    if references.shape[0] != estimates.shape[0] or references.shape[2] != estimates.shape[2]:
        raise MetricError(f"bss_eval_v4: references {references.shape} and estimates "
                          f"{estimates.shape} differ in sources or channels")
    estimates = _pad_or_truncate(references, estimates)
    if backend.startswith("torch"):
        from .torch_backend import bss_eval_images_v4_torch, torch_device

        values = bss_eval_images_v4_torch(references, estimates, int(win), int(hop),
                                          torch_device(backend))
        if values is not None and not np.all(np.isnan(values)):
            return values[0], values[1], values[2], values[3]
        backend = "numpy"  # singular Gram system or every frame silent: the numpy path decides
    if backend == "numpy":
        from .images import bss_eval_images_v4

        values, _ = bss_eval_images_v4(references, estimates, int(win), int(hop))
        # a source silent over the whole signal is silent in every frame: the exact check is
        # only needed where every frame came out NaN (or before handing over to museval)
        if values is None or np.all(np.isnan(values)):
            _raise_if_silent(references, estimates)
        if values is not None:
            return values[0], values[1], values[2], values[3]
        # a numerically singular Gram system (e.g. a reference whose channels are identical):
        # no unique filters, museval's values come from its LU's rounding; reproduce them
        notice = HANDOVER_NOTICE.get()
        if notice is not None:
            nsrc, n, nchan = references.shape
            notice(f"BSS Eval: the references' Gram system is singular (identical channels?); "
                   f"{nsrc} sources x {nchan} channels x {n / max(win, 1):.0f} s are evaluated by "
                   "museval's own solver, which is slow (minutes for many channels)")
        return _museval_values(references, estimates, int(win), int(hop))
    _raise_if_silent(references, estimates)
    return _museval_values(references, estimates, int(win), int(hop))


def _raise_if_silent(references: np.ndarray, estimates: np.ndarray) -> None:
    for what, x in (("reference", references), ("estimate", estimates)):
        silent = _silent_sources(x)
        if silent:
            raise MetricError(f"bss_eval_v4: {what}(s) {silent} are silent over the whole signal; "
                              "the projection is undefined for them: leave them out (score_track "
                              "does, and records the reason)")


def _museval_values(references: np.ndarray, estimates: np.ndarray, win: int, hop: int):
    references = references.astype(np.float64)
    estimates = estimates.astype(np.float64)
    metrics = _museval_metrics()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            sdr, isr, sir, sar, _ = metrics.bss_eval(
                references, estimates, window=win, hop=hop, compute_permutation=False,
                framewise_filters=False, bsseval_sources_version=False)
    except ValueError as exc:
        raise MetricError(f"bss_eval_v4: {exc}") from None
    return sdr, isr, sir, sar
