"""Metrics: pure functions (``si_sdr``, ``usdr``, ``bss_eval_v4``), their descriptions
(unit, direction, aggregation) and the per-track scoring with the silence policy."""

from .base import BSS_EVAL_METRICS, METRICS, MetricInfo
from .bsseval import bss_eval_v4
from .scoring import Score, score_track, with_accompaniment
from .sdr import USDR_DELTA, si_sdr, usdr

__all__ = ["BSS_EVAL_METRICS", "METRICS", "MetricInfo", "Score", "USDR_DELTA", "bss_eval_v4",
           "score_track", "si_sdr", "usdr", "with_accompaniment"]
