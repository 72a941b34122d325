"""Tracks and datasets: a track knows its name and split and loads its stems on demand."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import STEMS
from ..errors import DatasetError

Stems = dict[str, np.ndarray]


@dataclass(frozen=True)
class Track:
    """One multitrack song. ``load()`` returns ``(stems, sample_rate)`` with every stem
    ``(channels, samples)`` float32, all of one shape."""

    name: str
    subset: str
    loader: Callable[[], tuple[Stems, int]] = field(repr=False, compare=False)
    source: str = ""  # where it comes from (a folder, "synthetic seed=3"), for messages
    # identifies the content: generator version and seed, or each file's relative path, size
    # and content digest (demixbench.identity.file_fingerprint)
    fingerprint: str = ""
    parent: str = ""  # the song an excerpt piece was cut from ("" for a whole song)

    def load(self) -> tuple[Stems, int]:
        stems, sr = self.loader()
        check_stems(stems, self.source or self.name)
        return stems, sr


@dataclass(frozen=True)
class Dataset:
    name: str  # the spec it was opened from, e.g. "demo" or "musdb:/data/musdb18hq:test"
    tracks: tuple[Track, ...]
    # read from the user's files (MUSDB18 or any folder), not generated or embedded: its
    # "test" tracks may be MUSDB18 test, which the test-trained guard protects
    from_files: bool = False

    def __len__(self) -> int:
        return len(self.tracks)

    def __iter__(self):
        return iter(self.tracks)


def check_stems(stems: Stems, where: str) -> None:
    """The stems of one track must be the four MUSDB stems, of one shape."""
    missing = [s for s in STEMS if s not in stems]
    if missing:
        raise DatasetError(f"{where}: missing stem(s) {missing}; a track needs "
                           f"{', '.join(STEMS)}")
    shapes = {k: stems[k].shape for k in STEMS}
    if len({s[0] for s in shapes.values()}) > 1:
        raise DatasetError(f"{where}: stems have different channel counts "
                           f"{ {k: s[0] for k, s in shapes.items()} }; export them all as stereo")
    lengths = {k: s[1] for k, s in shapes.items()}
    if len(set(lengths.values())) > 1:
        raise DatasetError(f"{where}: stems have mismatched lengths {lengths} (samples); "
                           "re-export them with the same start and length")
