"""BSS Eval v4 (images mode, 512-tap time-invariant filters, framewise), as museval computes it.

Two backends with one signature, the drop-in one of ``museval.evaluate``:

- ``"numpy"`` (default): this project's implementation (:mod:`.bsseval_numpy`), the same
  quantities without museval's repeated work (inputs whose Gram system is numerically
  singular, such as a reference with identical channels, have no unique filters; for them
  museval's values are reproduced by running museval);
- ``"museval"``: museval's own ``metrics`` module, the reference implementation, loaded by file
  so that museval's package ``__init__`` (which imports musdb -> stempeg and needs an ffmpeg
  binary) is never executed.
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

from ..errors import MetricError


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


BACKENDS = ("numpy", "museval")

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
    if backend not in BACKENDS:
        raise MetricError(f"unknown BSS Eval backend {backend!r}; use one of {', '.join(BACKENDS)}")
    references = np.atleast_3d(np.asarray(references))
    estimates = np.atleast_3d(np.asarray(estimates))
    if references.ndim != 3 or estimates.ndim != 3:
        raise MetricError("bss_eval_v4: expected arrays shaped (nsrc, nsamples, nchan)")
    if references.shape[0] != estimates.shape[0] or references.shape[2] != estimates.shape[2]:
        raise MetricError(f"bss_eval_v4: references {references.shape} and estimates "
                          f"{estimates.shape} differ in sources or channels")
    estimates = _pad_or_truncate(references, estimates)
    if backend == "numpy":
        from .bsseval_numpy import bss_eval_images_v4

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
