"""Paired statistics over tracks: the one place reports, ``demixbench compare`` and the pytest
plugin get their medians, confidence intervals, p-values and verdicts from.

Two results are compared *paired*: per track, the difference ``b - a`` (oriented so that a
positive difference is an improvement, whatever the metric's direction). Then

- the median paired difference, with a bootstrap 95 % confidence interval of that median
  (``scipy.stats.bootstrap``, percentile method, 2000 resamples, fixed seed so a report is
  reproducible);
- the two-sided Wilcoxon signed-rank p (``scipy.stats.wilcoxon``; exact for small samples), and
  the Holm-corrected p over a table of tests (``statsmodels``' ``multipletests``);
- a verdict: ``better`` when the confidence interval lies above zero and the p is below 0.05,
  ``worse`` likewise below zero, else ``no evidence``. The p condition keeps tiny samples
  honest: with 4 tracks that all moved one way the bootstrap interval excludes zero, but the
  smallest two-sided p of 4 pairs is 1/8. Where a table of tests is made
  (:func:`holm_by_family`: ``compare``), the verdict follows the Holm-corrected p, computed on
  unrounded p-values, with blind and oracle comparisons in separate families. A single
  comparison's verdict uses its own p. (Gates judge the size of the drop and the interval.)

scipy and statsmodels are the libraries made for these tests; nothing here re-implements them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 20181201  # any fixed seed: reports must not change from one generation to the next


@dataclass
class Paired:
    """A paired comparison of two samples over the same tracks (``diff = b - a``, oriented)."""

    n: int
    median_a: float
    median_b: float
    median_diff: float
    ci_low: float
    ci_high: float
    p: float
    p_holm: float = math.nan
    verdict: str = "no evidence"

    def as_dict(self) -> dict:
        return asdict(self)


def paired_values(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The pairs where both values are finite (a NaN on either side drops the pair)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length ({a.size} and {b.size})")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def bootstrap_median_ci(d: Sequence[float], confidence: float = CONFIDENCE,
                        resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the median of ``d`` (NaN with < 2 values;
    the value itself when every value is equal)."""
    from scipy.stats import bootstrap

    d = np.asarray(d, dtype=float)
    if d.size < 2:
        return math.nan, math.nan
    if np.all(d == d[0]):
        return float(d[0]), float(d[0])
    res = bootstrap((d,), np.median, confidence_level=confidence, n_resamples=resamples,
                    method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def wilcoxon_p(d: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p of ``d`` against zero: 1 when every difference is zero,
    NaN when there is no pair."""
    from scipy.stats import wilcoxon

    d = np.asarray(d, dtype=float)
    if d.size == 0:
        return math.nan
    if not np.any(d):
        return 1.0
    return float(wilcoxon(d, alternative="two-sided").pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-corrected p-values (NaN entries stay NaN and do not count as tests)."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return [float(x) for x in out]


ALPHA = 0.05


def verdict(ci_low: float, ci_high: float, p: float) -> str:
    if not p < ALPHA:
        return "no evidence"
    if ci_low > 0:
        return "better"
    if ci_high < 0:
        return "worse"
    return "no evidence"


def compare_paired(a: Sequence[float], b: Sequence[float], higher_is_better: bool = True) -> Paired:
    """Compare ``b`` against ``a`` (same tracks, same order); differences are oriented so that
    positive means ``b`` is better."""
    a, b = paired_values(a, b)
    sign = 1.0 if higher_is_better else -1.0
    d = sign * (b - a)
    if d.size == 0:
        return Paired(0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
    low, high = bootstrap_median_ci(d)
    p = wilcoxon_p(d)
    return Paired(int(d.size), float(np.median(a)), float(np.median(b)), float(np.median(d)),
                  low, high, p, verdict=verdict(low, high, p))


def holm_by_family(table: Sequence[dict], family: str = "oracle") -> None:
    """Holm over each family of ``table`` (rows grouped by ``row[family]``: blind and oracle
    comparisons are never one family), on unrounded p; then each row's verdict follows its
    corrected p and its CI."""
    groups: dict = {}
    for row in table:
        groups.setdefault(bool(row.get(family, False)), []).append(row)
    for rows in groups.values():
        fill_holm(rows)
    for row in table:
        row["verdict"] = verdict(row["ci_low"], row["ci_high"], row["p_holm"])


def fill_holm(table: Sequence[dict]) -> None:
    """Fill ``p_holm`` of every comparison (a :class:`Paired` as a dict, ``p`` possibly None)
    of one table, in place."""
    for row, p in zip(table, holm([math.nan if r["p"] is None else r["p"] for r in table])):
        row["p_holm"] = p


def fmt(v: float | None, digits: int = 2) -> str:
    """A number for a text table; ``n/a`` for None, NaN and infinities."""
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def paired_cells(r: dict) -> list[str]:
    """Both medians, the signed median difference, its CI, p, Holm p and n of one comparison
    (a :class:`Paired` as a dict), as text-table cells."""
    diff = r["median_diff"]
    return [fmt(r["median_a"]), fmt(r["median_b"]),
            f"{diff:+.2f}" if diff is not None and math.isfinite(diff) else "n/a",
            f"[{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]", fmt_p(r["p"]),
            fmt_p(r.get("p_holm")), str(r["n"])]


def fmt_p(v: float | None) -> str:
    """A p-value for a text table: three decimals, and two significant digits below 0.001
    (a p of 1e-9 is not "0.000")."""
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{v:.2g}" if v < 0.001 else f"{v:.3f}"
