"""Scoring one track: which targets are compared, in which BSS Eval groups, the silence policy,
and per-track values. Every metric is taken from the metric registry by its declared scope
(:mod:`demixbench.metrics.base`); no metric name is special-cased here.

BSS Eval groups follow museval's ``eval_mus_track`` exactly (:func:`bss_groups`):

- the targets other than ``accompaniment`` form one group when there are at least two of them;
- when both ``vocals`` and ``accompaniment`` are there, they form a group of their own, which is
  where ``vocals`` is scored (its value from the larger group is dropped);
- a group of one source is never scored: such a target's BSS Eval rows are NaN with the reason
  "alone in its BSS Eval group". A 2-stem (vocals/accompaniment) separator is therefore scored
  as the two-source problem it solves, as museval scores it.

Silence policy (every NaN carries its reason in ``Score.nan_reason``):

- A reference that is digital silence over the whole excerpt makes every metric of that target
  NaN ("silent reference"): SDR-type ratios are undefined for it, and uSDR's delta would turn it
  into a large negative number that dominates a mean.
- An estimate that is digital silence makes the signal metrics not defined on it (SI-SDR) NaN
  ("silent estimate"); uSDR is still defined for it (about 0 dB).
- BSS Eval's own rule decides silence for a group: a source whose channels sum to zero at every
  sample (digital silence, but also L = -R) is silent, and museval refuses the whole group.
  Here that target's rows are NaN ("silent reference" / "silent estimate") and it is left out
  of its group, so the others are still scored as the group of the remaining sources (NaN with
  "alone in its BSS Eval group" when one is left).
- BSS Eval frames where any reference or estimate of the group is silent are NaN, as in museval;
  the per-track value is the median of the other frames, NaN ("no scorable frame") if none is
  left. A source silent in *every* frame (a stem audible only after the last whole frame, say)
  would make every frame of its group NaN in museval; here it is left out of the group with
  "no scorable frame", like a silent source, and the others are scored.
- Frames whose reference is not digitally silent but quieter than ``QUIET_DBFS`` are scored
  (museval does) and counted in ``detail["quiet_frames"]`` (their indices in
  ``detail["quiet_frame_index"]``) so reports can flag them; ``detail["frame_values"]`` keeps
  every frame's value (NaN as null).

Derived target: ``accompaniment`` is drums + bass + other, for references and for separators
that do not return it themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import SUITE_STEMS
from ..errors import MetricError
from .base import METRICS, MetricInfo

ACCOMPANIMENT_PARTS = ("drums", "bass", "other")
QUIET_DBFS = -60.0
ALONE = "alone in its BSS Eval group (museval scores groups of two or more sources)"


@dataclass
class Score:
    target: str
    metric: str
    value: float
    nan_reason: str | None = None
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class BssGroup:
    """Sources evaluated together, and those of them whose values are kept."""

    members: tuple[str, ...]
    recorded: tuple[str, ...]


def with_accompaniment(stems: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Return ``stems`` plus ``accompaniment`` (drums + bass + other) when it can be derived."""
    out = dict(stems)
    if "accompaniment" not in out and all(p in out for p in ACCOMPANIMENT_PARTS):
        out["accompaniment"] = sum(out[p] for p in ACCOMPANIMENT_PARTS)
    return out


def bss_groups(targets: Sequence[str]) -> list[BssGroup]:
    """museval's ``eval_mus_track`` grouping of ``targets`` (see the module doc)."""
    has_acc = "vocals" in targets and "accompaniment" in targets
    main = tuple(t for t in targets if t != "accompaniment")
    groups = []
    if len(main) >= 2:
        groups.append(BssGroup(main, tuple(t for t in main if not (has_acc and t == "vocals"))))
    if has_acc:
        groups.append(BssGroup(("vocals", "accompaniment"), ("vocals", "accompaniment")))
    return groups


def _silent(x: np.ndarray) -> bool:
    return not np.any(x)


def bss_silent(x: np.ndarray) -> bool:
    """museval's notion of a silent source: its channels sum to zero at every sample."""
    return not np.any(np.sum(x, axis=0, dtype=np.float64))


def silent_in_every_frame(x: np.ndarray, win: int, hop: int) -> bool:
    """Whether museval's frame rule finds ``x`` silent in every frame (its channels summing to
    zero throughout each frame), e.g. a stem audible only after the last whole frame."""
    n = x.shape[-1]
    nwin = max(0, (n - win + hop) // hop)
    mono = np.sum(x, axis=0, dtype=np.float64)
    return all(not np.any(mono[t * hop: t * hop + win]) for t in range(nwin))


def _quiet_frames(ref: np.ndarray, win: int, hop: int) -> list[int]:
    """Indices of the frames whose reference is audible but quieter than ``QUIET_DBFS``."""
    n = ref.shape[-1]
    nwin = 1 if win >= n else (n - win + hop) // hop
    quiet = []
    for t in range(nwin):
        frame = ref[:, t * hop: t * hop + win]
        if np.any(frame):
            rms = np.sqrt(np.mean(frame.astype(np.float64) ** 2))
            if 20 * np.log10(rms) < QUIET_DBFS:
                quiet.append(t)
    return quiet


def _frame_values(v: np.ndarray) -> list[float | None]:
    """Per-frame values for the store (reports draw them, museval JSON exports them): museval's
    5 decimals, NaN as None."""
    return [None if np.isnan(x) else round(float(x), 5) for x in v]


def _infos(metrics: Sequence[str]) -> list[MetricInfo]:
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise MetricError(f"unknown metric(s) {', '.join(unknown)}; choose from "
                          f"{', '.join(METRICS)}")
    return [METRICS[m] for m in metrics]


def score_track(references: Mapping[str, np.ndarray], estimates: Mapping[str, np.ndarray],
                metrics: Sequence[str], sample_rate: int, win_seconds: float = 1.0,
                hop_seconds: float | None = None, bsseval: str = "numpy",
                mixture: np.ndarray | None = None) -> list[Score]:
    """Score every target present in both ``references`` and ``estimates``.

    Shape: each signal ``(channels, samples)``; references and estimates of a target must have
    the same shape. ``metrics`` are names of :data:`METRICS`. Returns one :class:`Score` per
    (target, metric), NaN values carrying their reason. ``bsseval`` picks the BSS Eval backend
    ("numpy" or "museval", see :func:`bss_eval_v4`). ``mixture`` is the track's mixture for
    metrics that need it (default: the sum of the stems' references).
    """
    infos = _infos(metrics)
    refs = with_accompaniment(references)
    ests = with_accompaniment(estimates)
    targets = [t for t in (*SUITE_STEMS, *sorted(ests)) if t in refs and t in ests]
    targets = list(dict.fromkeys(targets))
    for t in targets:
        if refs[t].shape != ests[t].shape:
            raise MetricError(f"target {t}: reference {refs[t].shape} and estimate "
                              f"{ests[t].shape} differ in shape")
    scores: list[Score] = []
    signal = [m for m in infos if m.scope == "signal"]
    if mixture is None and any(m.needs_mixture for m in signal):
        keys = [k for k in references if k != "accompaniment"]
        if "accompaniment" in references and len(keys) <= 1:  # vocals + accompaniment
            keys.append("accompaniment")
        mixture = np.sum([references[k] for k in keys], axis=0) if keys else None
    scores += _signal_scores(refs, ests, targets, signal, sample_rate, mixture)
    group_metrics = [m for m in infos if m.scope == "bss_group"]
    if group_metrics:
        win = int(round(win_seconds * sample_rate))
        hop = int(round((hop_seconds or win_seconds) * sample_rate))
        scores += _group_scores(refs, ests, targets, group_metrics, sample_rate, win, hop, bsseval)
    order = {t: i for i, t in enumerate(targets)}
    position = {m: i for i, m in enumerate(metrics)}
    scores.sort(key=lambda s: (order[s.target], position[s.metric]))
    return scores


def _signal_scores(refs, ests, targets, infos: list[MetricInfo], sample_rate: int,
                   mixture: np.ndarray | None = None) -> list[Score]:
    out = []
    for t in targets:
        silent_ref, silent_est = _silent(refs[t]), _silent(ests[t])
        for m in infos:
            if silent_ref and not m.defined_for_silent_reference:
                out.append(Score(t, m.name, float("nan"), "silent reference"))
            elif silent_est and not m.defined_for_silent_estimate:
                out.append(Score(t, m.name, float("nan"), "silent estimate"))
            elif m.needs_mixture:
                if mixture is None:
                    out.append(Score(t, m.name, float("nan"), "no mixture to scale by"))
                else:
                    out.append(Score(t, m.name, float(m.compute(refs[t], ests[t], sample_rate,
                                                                mixture=mixture))))
            else:
                out.append(Score(t, m.name, float(m.compute(refs[t], ests[t], sample_rate))))
    return out


@dataclass
class GroupFrames:
    """One target's framewise BSS Eval values, or why it has none."""

    frames: dict[str, np.ndarray] | None
    reason: str | None = None
    group: list[str] = field(default_factory=list)


def group_frames(references: Mapping[str, np.ndarray], estimates: Mapping[str, np.ndarray],
                 metrics: Sequence[str], sample_rate: int, win: int, hop: int,
                 backend: str = "numpy") -> dict[str, GroupFrames]:
    """Framewise values of the ``bss_group`` metrics among ``metrics`` for every target, in
    museval's grouping (:func:`bss_groups`) with the silence policy. ``references`` and
    ``estimates`` are taken as they are (add ``accompaniment`` first if it is wanted)."""
    infos = [m for m in _infos(metrics) if m.scope == "bss_group"]
    targets = [t for t in (*SUITE_STEMS, *sorted(estimates)) if t in references and t in estimates]
    return _group_frames(references, estimates, list(dict.fromkeys(targets)), infos, sample_rate,
                         win, hop, backend)


def _group_frames(refs, ests, targets, infos: list[MetricInfo], sample_rate: int, win: int,
                  hop: int, backend: str) -> dict[str, GroupFrames]:
    out: dict[str, GroupFrames] = {}
    groups = bss_groups(targets)
    recorded = {t for g in groups for t in g.recorded}
    for t in targets:
        if t not in recorded:
            out[t] = GroupFrames(None, ALONE)
    if next(iter(refs.values())).shape[-1] < win:
        why = f"shorter than one BSS Eval frame ({win} samples)"
        return {t: GroupFrames(None, why) for t in targets}
    for group in groups:
        silent = {}
        for t in group.members:
            if bss_silent(refs[t]):
                silent[t] = "silent reference"
            elif bss_silent(ests[t]):
                silent[t] = "silent estimate"
            elif silent_in_every_frame(refs[t], win, hop):
                silent[t] = "no scorable frame"  # museval's frames would all be NaN, the group's too
            elif silent_in_every_frame(ests[t], win, hop):
                silent[t] = "no scorable frame (silent estimate in every frame)"
        usable = [t for t in group.members if t not in silent]
        for t in group.recorded:
            if t in silent:
                out[t] = GroupFrames(None, silent[t], list(group.members))
        if len(usable) < 2:
            for t in group.recorded:
                if t not in silent:
                    out[t] = GroupFrames(None, ALONE + f"; left out as silent: {', '.join(silent)}",
                                         list(group.members))
            continue
        r = np.stack([refs[t].T for t in usable])
        e = np.stack([ests[t].T for t in usable])
        frames: dict[str, np.ndarray] = {}
        for compute in dict.fromkeys(m.compute for m in infos):  # each computation once
            frames.update(compute(r, e, sample_rate, win=win, hop=hop, backend=backend))
        missing = [m.name for m in infos if m.name not in frames]
        if missing:
            raise MetricError(f"metric(s) {', '.join(missing)}: their compute function returned "
                              f"no values (it returned {', '.join(frames) or 'nothing'}); a "
                              "bss_group metric must return {name: (nsrc, frames)}")
        for i, t in enumerate(usable):
            if t in group.recorded:
                out[t] = GroupFrames({m.name: np.asarray(frames[m.name][i], dtype=float)
                                      for m in infos}, None, usable)
    return out


def _group_scores(refs, ests, targets, infos: list[MetricInfo], sample_rate: int, win: int,
                  hop: int, backend: str) -> list[Score]:
    out: list[Score] = []
    for t, got in _group_frames(refs, ests, targets, infos, sample_rate, win, hop, backend).items():
        if got.frames is None:
            detail = {"group": got.group} if got.group else {}
            out.extend(Score(t, m.name, float("nan"), got.reason, dict(detail)) for m in infos)
            continue
        quiet = _quiet_frames(refs[t], win, hop)
        common = {"quiet_frames": len(quiet), "quiet_frame_index": quiet, "group": got.group,
                  "hop_seconds": hop / sample_rate}
        for m in infos:
            v = got.frames[m.name]  # whole-signal metrics (mir_eval's) have one "frame"
            detail = {**common, "frames": int(v.size), "valid_frames": int(np.sum(~np.isnan(v))),
                      "frame_values": _frame_values(v)}
            if not np.any(~np.isnan(v)):
                out.append(Score(t, m.name, float("nan"), "no scorable frame", detail))
            else:
                out.append(Score(t, m.name, float(np.nanmedian(v)), None, detail))
    return out
