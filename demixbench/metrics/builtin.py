"""The built-in metrics, declared under the ``demixbench.metrics`` entry points exactly as a
plugin declares its own: BSS Eval v4 (SDR, ISR, SIR, SAR; one computation per group), SI-SDR and
the MDX challenge's uSDR."""

from __future__ import annotations

import numpy as np

from .base import BSS_EVAL_METRICS, MetricInfo
from .bsseval import bss_eval_v4
from .sdr import USDR_DELTA, si_sdr, usdr

# museval's BSS Eval v4: 512-tap time-invariant distortion filters, images mode
BSS_EVAL_PARAMETERS = {"version": "bss_eval v4 (museval)", "filter_length": 512, "mode": "images"}


def bss_eval_frames(references: np.ndarray, estimates: np.ndarray, sample_rate: int, *,
                    win: int, hop: int, backend: str = "numpy") -> dict[str, np.ndarray]:
    """BSS Eval v4 of one group, every frame: ``{"sdr": (nsrc, nwin), "isr": ..., ...}``."""
    return dict(zip(BSS_EVAL_METRICS, bss_eval_v4(references, estimates, win=win, hop=hop,
                                                   backend=backend)))


def mean_si_sdr(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    return float(np.mean(si_sdr(reference, estimate)))


def whole_usdr(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    return usdr(reference, estimate, delta=USDR_DELTA)


SDR = MetricInfo("sdr", "dB", True, "BSS Eval v4 SDR, per track the median over 1 s frames (cSDR "
                 "once aggregated by median over tracks)", "median", "bss_group", bss_eval_frames,
                 parameters=BSS_EVAL_PARAMETERS)
ISR = MetricInfo("isr", "dB", True, "BSS Eval v4 image-to-spatial distortion ratio, median over "
                 "frames", "median", "bss_group", bss_eval_frames, parameters=BSS_EVAL_PARAMETERS)
SIR = MetricInfo("sir", "dB", True, "BSS Eval v4 source-to-interference ratio, median over frames",
                 "median", "bss_group", bss_eval_frames, parameters=BSS_EVAL_PARAMETERS)
SAR = MetricInfo("sar", "dB", True, "BSS Eval v4 source-to-artifacts ratio, median over frames",
                 "median", "bss_group", bss_eval_frames, parameters=BSS_EVAL_PARAMETERS)
SI_SDR = MetricInfo("si_sdr", "dB", True, "scale-invariant SDR (zero-mean), whole excerpt, mean "
                    "over channels", "median", "signal", mean_si_sdr,
                    parameters={"zero_mean": True, "channels": "mean"})
USDR = MetricInfo("usdr", "dB", True, "utterance SDR of the MDX challenge (delta 1e-7), whole "
                  "excerpt", "mean", "signal", whole_usdr, defined_for_silent_estimate=True,
                  parameters={"delta": USDR_DELTA})
