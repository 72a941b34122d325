"""Scoring one track: which targets are compared, the silence policy, and per-track values.

Silence policy (every NaN carries its reason in ``Score.nan_reason``):

- A reference that is digital silence over the whole excerpt makes every metric of that target
  NaN ("silent reference"): SDR-type ratios are undefined for it, and uSDR's delta would turn it
  into a large negative number that dominates a mean. The target is left out of the BSS Eval
  group, so the other targets are still scored (museval itself raises on such input).
- An estimate that is digital silence makes SI-SDR and the BSS Eval metrics of that target NaN
  ("silent estimate"; the scale-invariant projection and the images decomposition are undefined)
  and leaves it out of the BSS Eval group; uSDR is still defined for it (about 0 dB).
- BSS Eval frames where any reference or estimate of the group is silent are NaN, as in museval;
  the per-track value is the median of the other frames, NaN ("no scorable frame") if none is left.
- Frames whose reference is not digitally silent but quieter than ``QUIET_DBFS`` are scored
  (museval does) and counted in ``detail["quiet_frames"]`` so reports can flag them.

Derived target: ``accompaniment`` is drums + bass + other, for references and for separators
that do not return it themselves. BSS Eval scores the four stems together and accompaniment
together with vocals, as museval's MUSDB evaluation does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import STEMS
from ..errors import MetricError
from .base import BSS_EVAL_METRICS, METRICS
from .bsseval import bss_eval_v4
from .sdr import si_sdr, usdr

ACCOMPANIMENT_PARTS = ("drums", "bass", "other")
QUIET_DBFS = -60.0


@dataclass
class Score:
    target: str
    metric: str
    value: float
    nan_reason: str | None = None
    detail: dict = field(default_factory=dict)


def with_accompaniment(stems: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Return ``stems`` plus ``accompaniment`` (drums + bass + other) when it can be derived."""
    out = dict(stems)
    if "accompaniment" not in out and all(p in out for p in ACCOMPANIMENT_PARTS):
        out["accompaniment"] = sum(out[p] for p in ACCOMPANIMENT_PARTS)
    return out


def _silent(x: np.ndarray) -> bool:
    return not np.any(x)


def _quiet_frames(ref: np.ndarray, win: int, hop: int) -> int:
    n = ref.shape[-1]
    nwin = 1 if win >= n else (n - win + hop) // hop
    count = 0
    for t in range(nwin):
        frame = ref[:, t * hop: t * hop + win]
        if np.any(frame):
            rms = np.sqrt(np.mean(frame.astype(np.float64) ** 2))
            count += 20 * np.log10(rms) < QUIET_DBFS
    return int(count)


def score_track(references: Mapping[str, np.ndarray], estimates: Mapping[str, np.ndarray],
                metrics: Sequence[str], sample_rate: int, win_seconds: float = 1.0,
                hop_seconds: float | None = None, bsseval: str = "numpy") -> list[Score]:
    """Score every target present in both ``references`` and ``estimates``.

    Shape: each signal ``(channels, samples)``; references and estimates of a target must have
    the same shape. ``metrics`` are names of :data:`METRICS`. Returns one :class:`Score` per
    (target, metric), NaN values carrying their reason. ``bsseval`` picks the BSS Eval backend
    ("numpy" or "museval", see :func:`bss_eval_v4`).
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise MetricError(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}")
    refs = with_accompaniment(references)
    ests = with_accompaniment(estimates)
    targets = [t for t in (*STEMS, "accompaniment", *sorted(ests)) if t in refs and t in ests]
    targets = list(dict.fromkeys(targets))
    for t in targets:
        if refs[t].shape != ests[t].shape:
            raise MetricError(f"target {t}: reference {refs[t].shape} and estimate "
                              f"{ests[t].shape} differ in shape")

    silent_ref = {t for t in targets if _silent(refs[t])}
    silent_est = {t for t in targets if _silent(ests[t])}
    scores: list[Score] = []

    def nan(t: str, m: str, reason: str) -> Score:
        return Score(t, m, float("nan"), reason)

    for t in targets:
        for m in metrics:
            if m in BSS_EVAL_METRICS:
                continue
            if t in silent_ref:
                scores.append(nan(t, m, "silent reference"))
            elif m == "si_sdr":
                if t in silent_est:
                    scores.append(nan(t, m, "silent estimate"))
                else:
                    scores.append(Score(t, m, float(np.mean(si_sdr(refs[t], ests[t])))))
            elif m == "usdr":
                scores.append(Score(t, m, usdr(refs[t], ests[t])))

    wanted = [m for m in metrics if m in BSS_EVAL_METRICS]
    if wanted:
        win = int(round(win_seconds * sample_rate))
        hop = int(round((hop_seconds or win_seconds) * sample_rate))
        four = [t for t in targets if t in STEMS]
        groups = [four] if four else []
        if "accompaniment" in targets:
            groups.append([t for t in ("vocals", "accompaniment") if t in targets])
        scored: set[str] = set()
        for group in groups:
            pending = [t for t in group if t not in scored]
            for t in pending:
                if t in silent_ref or t in silent_est:
                    why = "silent reference" if t in silent_ref else "silent estimate"
                    scores.extend(nan(t, m, why) for m in wanted)
                    scored.add(t)
            usable = [t for t in group if t not in silent_ref and t not in silent_est]
            if not any(t not in scored for t in usable):
                continue
            r = np.stack([refs[t].T for t in usable])
            e = np.stack([ests[t].T for t in usable])
            values = dict(zip(BSS_EVAL_METRICS, bss_eval_v4(r, e, win=win, hop=hop, backend=bsseval)))
            for i, t in enumerate(usable):
                if t in scored:
                    continue
                frames = values["sdr"][i]
                valid = int(np.sum(~np.isnan(frames)))
                detail = {"frames": int(frames.size), "valid_frames": valid,
                          "quiet_frames": _quiet_frames(refs[t], win, hop),
                          "group": usable}
                for m in wanted:
                    v = values[m][i]
                    if valid == 0:
                        scores.append(Score(t, m, float("nan"), "no scorable frame", detail))
                    else:
                        scores.append(Score(t, m, float(np.nanmedian(v)), None, detail))
                scored.add(t)
    order = {t: i for i, t in enumerate(targets)}
    scores.sort(key=lambda s: (order[s.target], list(metrics).index(s.metric)))
    return scores
