"""The seeds' excerpt protocol: windows where every stem is audible, mixture = sum of stems.

A stem is *active* in a 1 s frame when its RMS there is above ``threshold_dbfs``. Candidate
windows of the requested length start on whole seconds. Only the stems active somewhere in the
track take part in the choice (a stem absent from the whole track, as some MUSDB songs lack
one, would make every window score 0). The chosen window maximises, in this order:

1. the smallest fraction of active frames over those stems (every stem audible as much as
   possible);
2. the total activity: the active frames of all stems together (ties are common: every window
   where each stem is active throughout scores 1);
3. earliness.

A stem absent from the whole track is reported in ``Excerpt.absent_stems``; a stem with no
sample in the chosen window in ``Excerpt.silent_stems``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from .. import STEMS
from ..errors import DatasetError
from .base import Stems


@dataclass(frozen=True)
class Excerpt:
    start: int  # samples
    stop: int
    sample_rate: int
    activity: dict[str, float] = field(default_factory=dict)  # fraction of active frames
    silent_stems: tuple[str, ...] = ()
    absent_stems: tuple[str, ...] = ()  # no active frame anywhere in the track

    @property
    def notices(self) -> list[str]:
        return [f"{s} is below {THRESHOLD_DBFS:g} dBFS over the whole track; the excerpt was "
                "chosen by the other stems" for s in self.absent_stems]

    @property
    def label(self) -> str:
        return f"{self.start / self.sample_rate:.2f}-{self.stop / self.sample_rate:.2f}s"


_LABEL = re.compile(r"^(?P<start>[0-9.]+)-(?P<stop>[0-9.]+)s$")


def excerpt_seconds(label: str) -> float:
    """The length in seconds of an excerpt from its label (``"12.00-42.00s"``); NaN if the
    label is not one."""
    m = _LABEL.match(label or "")
    return float(m["stop"]) - float(m["start"]) if m else math.nan


def _active_frames(x: np.ndarray, frame: int, threshold_dbfs: float) -> np.ndarray:
    n = x.shape[-1] // frame
    if n == 0:
        return np.array([bool(np.any(x))])
    frames = x[:, : n * frame].astype(np.float64).reshape(x.shape[0], n, frame)
    rms = np.sqrt(np.mean(frames**2, axis=(0, 2)))
    with np.errstate(divide="ignore"):
        return 20 * np.log10(rms) > threshold_dbfs


THRESHOLD_DBFS = -50.0


def choose_excerpt(stems: Mapping[str, np.ndarray], sample_rate: int, seconds: float,
                   threshold_dbfs: float = THRESHOLD_DBFS,
                   taken: tuple[tuple[int, int], ...] = ()) -> Excerpt:
    """Pick the excerpt of ``seconds`` (0 = whole track) by the rule of the module doc, among
    the windows that overlap none of the ``taken`` ``(start, stop)`` sample ranges (raises
    :class:`DatasetError` when none is left)."""
    if not np.isfinite(seconds) or seconds < 0:
        raise DatasetError(f"excerpt length must be a finite number of seconds >= 0, got {seconds}")
    n = next(iter(stems.values())).shape[-1]
    frame = int(sample_rate)
    activity = {k: _active_frames(v, frame, threshold_dbfs) for k, v in stems.items()}
    absent = tuple(k for k, a in activity.items() if not np.any(a))
    present = [a for k, a in activity.items() if k not in absent]
    length = n if seconds == 0 else min(n, int(round(seconds * sample_rate)))
    win = max(1, length // frame)
    n_frames = len(next(iter(activity.values())))
    best_start, best_key = 0, None
    for s in range(0, max(1, n_frames - win + 1)):
        lo = s * frame
        if any(lo < stop and start < lo + length for start, stop in taken):
            continue
        fractions = [float(np.mean(a[s: s + win])) for a in present] or [0.0]
        key = (min(fractions), sum(int(np.sum(a[s: s + win])) for a in present))
        if best_key is None or key > best_key:
            best_start, best_key = s, key
    if best_key is None:
        raise DatasetError(f"no {length / sample_rate:g} s window of this {n / sample_rate:.1f} s "
                           f"track is left beside {len(taken)} excerpt(s) already chosen")
    start = best_start * frame if length < n else 0
    start = min(start, n - length)
    frac = {k: float(np.mean(a[start // frame: start // frame + win])) for k, a in activity.items()}
    silent = tuple(k for k in stems if not np.any(stems[k][:, start: start + length]))
    return Excerpt(start, start + length, sample_rate, frac, silent, absent)


def cut_and_mix(stems: Stems, excerpt: Excerpt, gains: Mapping[str, float] | None = None
                ) -> tuple[Stems, np.ndarray]:
    """Cut the stems to ``excerpt`` and rebuild the mixture as their (gain-weighted) sum.

    Returns ``(stems, mixture)``; with ``gains`` each stem is scaled before summing and the
    returned stems are the scaled ones, so references match what is in the mixture.
    """
    gains = dict(gains or {})
    unknown = set(gains) - set(STEMS)
    if unknown:
        raise DatasetError(f"gains for unknown stems {sorted(unknown)}; use {', '.join(STEMS)}")
    cut = {k: np.ascontiguousarray(v[:, excerpt.start: excerpt.stop] * np.float32(gains.get(k, 1.0)))
           for k, v in stems.items()}
    mixture = np.sum([cut[k] for k in STEMS], axis=0, dtype=np.float32)
    return cut, mixture


def choose_excerpts(stems: Mapping[str, np.ndarray], sample_rate: int, seconds: float, count: int,
                    threshold_dbfs: float = THRESHOLD_DBFS) -> list[Excerpt]:
    """``count`` non-overlapping excerpts of ``seconds``, each the protocol's best window among
    those left by the ones before (so the first is :func:`choose_excerpt`'s), in time order."""
    if seconds <= 0:
        raise DatasetError("several excerpts per track need an excerpt length: --excerpt SECONDS")
    chosen: list[Excerpt] = []
    for _ in range(count):
        taken = tuple((e.start, e.stop) for e in chosen)
        chosen.append(choose_excerpt(stems, sample_rate, seconds, threshold_dbfs, taken))
    return sorted(chosen, key=lambda e: e.start)


def excerpt_pieces(dataset, count: int, seconds: float):
    """``dataset`` with each track replaced by ``count`` tracks, its non-overlapping excerpts
    (:func:`choose_excerpts`), named ``<track> #i`` in time order. A run of ``seconds``-long
    excerpts then scores each piece whole, and statistics pair over excerpts."""
    from .base import Dataset, Track

    if count <= 1:
        return dataset
    tracks = []
    for track in dataset.tracks:
        chosen: list[Excerpt] = []  # the track's excerpts, chosen once for all its pieces

        def load(i: int, track=track, chosen=chosen):
            stems, sr = track.load()
            if not chosen:
                n = next(iter(stems.values())).shape[-1]
                try:
                    chosen.extend(choose_excerpts(stems, sr, seconds, count))
                except DatasetError:
                    raise DatasetError(
                        f"{track.name} is {n / sr:.1f} s long: {count} excerpts of {seconds:g} s "
                        "do not fit in it; lower --excerpts-per-track or --excerpt") from None
            e = chosen[i]
            return {k: np.ascontiguousarray(v[:, e.start:e.stop]) for k, v in stems.items()}, sr

        for i in range(count):
            tracks.append(Track(f"{track.name} #{i + 1}", track.subset, partial(load, i),
                                track.source,
                                f"{track.fingerprint} excerpt {i + 1} of {count} x {seconds:g} s",
                                parent=track.name))
    return Dataset(dataset.name, tuple(tracks), dataset.from_files)
