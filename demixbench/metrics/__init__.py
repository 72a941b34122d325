"""Metrics: pure functions (``si_sdr``, ``usdr``, ``bss_eval_v4``), their declarations (unit,
direction, aggregation, scope) in the ``demixbench.metrics`` entry points, and the per-track
scoring with museval's grouping and the silence policy."""

from .base import BSS_EVAL_METRICS, METRICS, MetricInfo, MetricRegistry
from .bsseval import bss_eval_v4
from .scoring import BssGroup, Score, bss_groups, score_track, with_accompaniment
from .sdr import USDR_DELTA, si_sdr, usdr

__all__ = ["BSS_EVAL_METRICS", "METRICS", "BssGroup", "MetricInfo", "MetricRegistry", "Score",
           "USDR_DELTA", "bss_eval_v4", "bss_groups", "score_track", "si_sdr", "usdr",
           "with_accompaniment"]
