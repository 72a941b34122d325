"""What a metric is: a name, a unit and a direction."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    """Describes one metric name as it appears in result rows."""

    name: str
    unit: str
    higher_is_better: bool
    description: str
    aggregate: str  # how per-track values are combined across tracks: "median" or "mean"


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("sdr", "dB", True, "BSS Eval v4 SDR, per track the median over 1 s frames "
                   "(cSDR once aggregated by median over tracks)", "median"),
        MetricInfo("isr", "dB", True, "BSS Eval v4 image-to-spatial distortion ratio, median "
                   "over frames", "median"),
        MetricInfo("sir", "dB", True, "BSS Eval v4 source-to-interference ratio, median over "
                   "frames", "median"),
        MetricInfo("sar", "dB", True, "BSS Eval v4 source-to-artifacts ratio, median over frames",
                   "median"),
        MetricInfo("si_sdr", "dB", True, "scale-invariant SDR (zero-mean), whole excerpt, mean "
                   "over channels", "median"),
        MetricInfo("usdr", "dB", True, "utterance SDR of the MDX challenge (delta 1e-7), whole "
                   "excerpt", "mean"),
    )
}

BSS_EVAL_METRICS = ("sdr", "isr", "sir", "sar")
