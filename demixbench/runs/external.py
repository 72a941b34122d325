"""``demixbench evaluate``: estimates made by any tool, scored as a separator of the suite.

The estimates folder is read as a separator, :class:`ExternalEstimates`, that the ordinary
runner runs: so references, excerpts, metrics, rows and the store are exactly those of
``demixbench run``, and the results sit in leaderboards, reports and comparisons beside built-in
separators (the configuration says ``external``). Layouts, as museval and most tools write them:

- ``ESTIMATES/<subset>/<track>/<target>.<ext>`` (subset ``train`` or ``test``), or
- ``ESTIMATES/<track>/<target>.<ext>``,

in any format soundfile reads. An estimate longer or shorter than its reference is truncated
or zero-padded at the end (museval's rule), one at another sample rate is resampled with soxr,
a mono one is duplicated to the reference's channels; each change is recorded with the unit.
Tracks of the references without estimates, estimates without a track, and tracks missing a
target are listed in the run's notices, never skipped silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import adapt_channels, load_audio, resample
from ..datasets import Dataset, open_dataset
from ..datasets.folder import STEM_EXTENSIONS
from ..errors import AudioError, DatasetError, DemixbenchError
from ..separators import Separator, default_registry
from ..separators.registry import with_instance
from ..weights import file_sha256
from .compute import CURRENT_TRACK
from .config import RunConfig, RunSummary
from .runner import Runner
from .store import ResultsStore

SUBSETS = ("train", "test")
TARGETS = ("vocals", "drums", "bass", "other", "accompaniment")



def find_estimates(folder: str | Path) -> dict[tuple[str, str], dict[str, Path]]:
    """``{(subset, track): {target: file}}`` for both layouts ("" subset for the flat one)."""
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder of estimates")
    found: dict[tuple[str, str], dict[str, Path]] = {}

    def track_dir(d: Path, subset: str) -> None:
        files = {}
        for p in sorted(d.iterdir()):
            if p.is_file() and p.suffix.lower() in STEM_EXTENSIONS and p.stem in TARGETS:
                if p.stem in files:
                    raise DatasetError(f"{d}: two files for {p.stem} ({files[p.stem].name}, "
                                       f"{p.name}); keep one")
                files[p.stem] = p
        if files:
            found[(subset, d.name)] = files

    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if d.name in SUBSETS:
            for t in sorted(p for p in d.iterdir() if p.is_dir()):
                track_dir(t, d.name)
        else:
            track_dir(d, "")
    if not found:
        raise DatasetError(f"{root}: no estimates found; expected <track>/<target>.wav or "
                           f"<subset>/<track>/<target>.wav with targets among {', '.join(TARGETS)}")
    return found


class ExternalEstimates(Separator):
    """The files of one estimates folder, returned for the track the runner is scoring."""

    sample_rate = None
    channels = None
    description = "estimates made by another tool, read from files (external)"

    def __init__(self, folder: str | Path, name: str, files: Mapping[tuple[str, str], Mapping[str, Path]]):
        self.name = name  # type: ignore[misc]  # one class, many named instances
        self.folder = Path(folder)
        self.estimate_files = {k: dict(v) for k, v in files.items()}
        self.sources = tuple(t for t in TARGETS if any(t in f for f in self.estimate_files.values()))
        self._notes: list[str] = []
        self._digest = {f"{s}/{t}/{target}": file_sha256(p)
                        for (s, t), by in sorted(self.estimate_files.items()) for target, p in by.items()}

    def params(self) -> dict[str, Any]:
        return {"external": True, "folder": str(self.folder), "files": self._digest}

    def notes(self) -> list[str]:
        return list(self._notes)

    def lookup(self, subset: str, track: str) -> dict[str, Path] | None:
        return self.estimate_files.get((subset, track)) or self.estimate_files.get(("", track))

    def _separate(self, mixture: np.ndarray, sample_rate: int,
                  references: Mapping[str, np.ndarray] | None):
        current = CURRENT_TRACK.get()
        if current is None:
            raise DemixbenchError(f"{self.name}: external estimates are scored through "
                                  "`demixbench evaluate`, which tells them the track")
        _, subset, track, (start, stop), length = current
        files = self.lookup(subset, track)
        self._notes = []
        out = {}
        for target in self.sources:
            audio, sr = load_audio(files[target])
            if sr != sample_rate:
                audio, _ = resample(audio, sr, sample_rate)
                self._notes.append(f"{target}: resampled from {sr} Hz to {sample_rate} Hz")
            if audio.shape[0] != mixture.shape[0]:
                try:
                    audio, _ = adapt_channels(audio, mixture.shape[0])
                except AudioError as exc:
                    raise AudioError(f"{files[target]} (track {subset + '/' if subset else ''}"
                                     f"{track}, {target}): {exc}") from None
                self._notes.append(f"{target}: channels adapted to {mixture.shape[0]}")
            if audio.shape[1] != length:
                self._notes.append(f"{target}: {audio.shape[1]} samples, the reference "
                                   f"{length}: {'truncated' if audio.shape[1] > length else 'zero-padded'}")
                fixed = np.zeros((audio.shape[0], length), dtype=np.float32)
                n = min(length, audio.shape[1])
                fixed[:, :n] = audio[:, :n]
                audio = fixed
            out[target] = np.ascontiguousarray(audio[:, start:stop], dtype=np.float32)
        return out


def matched_dataset(spec: str, sep: ExternalEstimates) -> tuple[Dataset, list[str]]:
    """The reference dataset restricted to the tracks that have a complete set of estimates,
    and the notices that say what was left out and why."""
    dataset = open_dataset(spec)
    notices, keep = [], []
    used = set()
    for t in dataset.tracks:
        files = sep.lookup(t.subset, t.name)
        if files is None:
            notices.append(f"{dataset.name}/{t.name}: no estimates in {sep.folder}; not scored")
            continue
        used.add((t.subset, t.name) if (t.subset, t.name) in sep.estimate_files else ("", t.name))
        missing = [s for s in sep.sources if s not in files]
        if missing:
            notices.append(f"{dataset.name}/{t.name}: no estimate of {', '.join(missing)} in "
                           f"{sep.folder}; not scored")
            continue
        keep.append(t)
    for key in sorted(set(sep.estimate_files) - used):
        notices.append(f"{sep.folder}: estimates for {'/'.join(k for k in key if k)} match no "
                       f"track of {dataset.name}; not scored")
    if not keep:
        raise DemixbenchError(f"no track of {dataset.name} has a complete set of estimates in "
                              f"{sep.folder}: " + "; ".join(notices[:5]))
    return Dataset(dataset.name, tuple(keep), dataset.from_files), notices


def evaluate(folder: str | Path, references: str, name: str, store: ResultsStore,
             metrics: list[str] | None = None, excerpt: float = 0.0, progress=None,
             units=None) -> RunSummary:
    """Score the estimates in ``folder`` against the dataset ``references`` as separator
    ``name`` (whole tracks unless ``excerpt`` seconds are asked, cut as `run` cuts them)."""
    from .runner import DEFAULT_METRICS

    if name in default_registry():
        raise DemixbenchError(f"--name {name} is an installed separator; give the external "
                              "estimates a name of their own")
    sep = ExternalEstimates(folder, name, find_estimates(folder))
    dataset, notices = matched_dataset(references, sep)
    config = RunConfig(datasets=[references], separators=[name],
                       metrics=list(metrics or DEFAULT_METRICS), excerpt=excerpt)
    runner = Runner(config, store, cache_dir=None, registry=with_instance(sep), progress=progress,
                    units=units, datasets=[dataset])
    runner.notices.extend(notices)
    return runner.run(command=f"evaluate {folder} --references {references} --name {name}")
