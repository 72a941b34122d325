"""mir_eval's ``bss_eval_sources`` (BSS Eval v3 on whole signals: 512-tap time-invariant
filters, sources mode), the metric seed reports 001 and 003 use, under its own names —
``mireval_sdr``, ``mireval_sir``, ``mireval_sar`` — so it is never confused with museval's
framewise v4 ``sdr``. Computed through the ``mir_eval`` package itself (extra ``mireval``).

mir_eval's sources are single-channel: each stereo stem is averaged to mono first, as the
seeds did with stereo music. The permutation search is off: demixbench scores each named
stem against its own reference (mir_eval's default, ``compute_permutation=True``, would
re-pair swapped estimates and can only raise the values). Both choices are recorded in the
metric's parameters, so runs that differ in them are never compared. Like the framewise
metrics, an excerpt shorter than one BSS Eval window (``--win``) is not scored.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import MetricError
from .base import MetricInfo

NAMES = ("mireval_sdr", "mireval_sir", "mireval_sar")
PARAMETERS = {"version": "mir_eval bss_eval_sources (BSS Eval v3)", "filter_length": 512,
              "channels": "mono mean", "compute_permutation": False}


def bss_eval_sources(references: np.ndarray, estimates: np.ndarray, sample_rate: int, *,
                     win: int, hop: int, backend: str = "numpy") -> dict[str, np.ndarray]:
    """One group's whole-signal values: ``{name: (nsrc, 1)}`` (one "frame": the signal)."""
    try:
        import mir_eval.separation
    except ImportError as exc:
        raise MetricError(f"the mireval_* metrics need mir_eval ({exc}): pip install "
                          "'demixbench[mireval]'") from None
    ref = np.asarray(references, dtype=np.float64).mean(axis=2)
    est = np.asarray(estimates, dtype=np.float64).mean(axis=2)
    with warnings.catch_warnings():  # 0.8 announces the function's move in 0.9 (pinned here)
        warnings.filterwarnings("ignore", category=FutureWarning, module="mir_eval")
        warnings.filterwarnings("ignore", message=".*bss_eval_sources", category=FutureWarning)
        sdr, sir, sar, _ = mir_eval.separation.bss_eval_sources(ref, est,
                                                                compute_permutation=False)
    return {name: np.asarray(v, dtype=float)[:, None] for name, v in zip(NAMES, (sdr, sir, sar))}


def _info(name: str, what: str) -> MetricInfo:
    return MetricInfo(name, "dB", True, f"mir_eval bss_eval_sources {what} (BSS Eval v3, whole "
                      "signal, stems averaged to mono; seed reports 001/003)", "median",
                      "bss_group", bss_eval_sources, parameters=PARAMETERS,
                      requires=("mir_eval",), install="'demixbench[mireval]'")


MIREVAL_SDR = _info("mireval_sdr", "SDR")
MIREVAL_SIR = _info("mireval_sir", "SIR")
MIREVAL_SAR = _info("mireval_sar", "SAR")
