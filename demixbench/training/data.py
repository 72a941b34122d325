"""Training examples from any dataset spec: random segments, remixed across songs.

Every track's stems are loaded once (the three CC0 training songs and a synthetic split fit in
memory). A training example takes, for each stem independently, a random song and a random
offset (Demucs' remix augmentation: mixtures no recording ever had, so a few songs give many
mixtures), a random gain per stem, a random channel swap and sign flip per stem; the mixture is
the sum. A draw that lands on a silent stretch stays silent: the model must learn silence too.

Validation: the tracks of ``--valid`` whole, or, without it, the last ``holdout`` fraction of
every training track (never drawn for training); from each, an excerpt chosen by the suite's
excerpt protocol (:func:`demixbench.datasets.choose_excerpt`), so that the stems are active.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .. import STEMS
from ..datasets import Dataset, choose_excerpt
from ..errors import DemixbenchError

GAIN_RANGE = (0.25, 1.25)


@dataclass
class Song:
    name: str
    stems: np.ndarray  # (sources, channels, samples) float32


def load_songs(datasets: list[Dataset], sample_rate: int, sources=STEMS) -> list[Song]:
    songs = []
    for dataset in datasets:
        for track in dataset.tracks:
            stems, sr = track.load()
            if sr != sample_rate:
                raise DemixbenchError(f"{dataset.name}/{track.name} is at {sr} Hz; the models "
                                      f"train at {sample_rate} Hz: resample the data first")
            missing = [s for s in sources if s not in stems]
            if missing:
                raise DemixbenchError(f"{dataset.name}/{track.name} has no {missing} stem(s)")
            arr = np.stack([np.asarray(stems[s], dtype=np.float32) for s in sources])
            if arr.shape[1] == 1:
                arr = np.repeat(arr, 2, axis=1)
            songs.append(Song(f"{dataset.name}/{track.name}", arr))
    if not songs:
        raise DemixbenchError("no training tracks: give --dataset a spec with tracks")
    return songs


def fingerprint(datasets: list[Dataset]) -> list[dict]:
    """What the data was, for the checkpoint's record: spec and each track's fingerprint."""
    return [{"dataset": d.name, "tracks": len(d.tracks),
             "sha256": hashlib.sha256("\n".join(t.fingerprint for t in d.tracks).encode())
             .hexdigest()} for d in datasets]


def split_holdout(songs: list[Song], holdout: float) -> tuple[list[Song], list[Song]]:
    """Training songs without their last ``holdout`` fraction, and those fractions."""
    train, valid = [], []
    for song in songs:
        cut = int(song.stems.shape[-1] * (1 - holdout))
        train.append(Song(song.name, song.stems[..., :cut]))
        valid.append(Song(song.name + " (held out)", song.stems[..., cut:]))
    return train, valid


class SegmentSampler:
    """Draws ``(mixture (B, C, N), stems (B, S, C, N))`` batches; seeded by ``rng``."""

    def __init__(self, songs: list[Song], segment: int, remix: bool = True):
        self.songs = [s for s in songs if s.stems.shape[-1] >= segment]
        if not self.songs:
            longest = max(s.stems.shape[-1] for s in songs)
            raise DemixbenchError(f"every training track is shorter than the segment "
                                  f"({segment} samples, longest {longest}): use a shorter "
                                  "--segment")
        self.segment = segment
        self.remix = remix

    def batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        nsrc, nchan = self.songs[0].stems.shape[:2]
        stems = np.empty((size, nsrc, nchan, self.segment), dtype=np.float32)
        for b in range(size):
            song = self.songs[rng.integers(len(self.songs))]
            for s in range(nsrc):
                if self.remix:
                    song = self.songs[rng.integers(len(self.songs))]
                start = rng.integers(song.stems.shape[-1] - self.segment + 1)
                x = song.stems[s, :, start:start + self.segment]
                gain = rng.uniform(*GAIN_RANGE)
                if rng.random() < 0.5:
                    x = x[::-1]
                if rng.random() < 0.5:
                    gain = -gain
                stems[b, s] = x * gain
        return stems.sum(axis=1), stems


def validation_excerpts(songs: list[Song], seconds: float, sample_rate: int,
                        sources=STEMS) -> list[tuple[str, np.ndarray]]:
    """One excerpt per song (the excerpt protocol's choice): ``(name, stems (S, C, N))``."""
    out = []
    for song in songs:
        stems = {s: song.stems[i] for i, s in enumerate(sources)}
        excerpt = choose_excerpt(stems, sample_rate, seconds)
        out.append((song.name, song.stems[..., excerpt.start:excerpt.stop]))
    return out
