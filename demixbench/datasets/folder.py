"""Readers for the MUSDB18-HQ folder layout and any folder laid out the same way.

Layout: ``ROOT/{train,test}/<track>/{mixture,drums,bass,other,vocals}.<ext>``, or, for a
plain folder, ``ROOT/<track>/...`` directly, ``<ext>`` any format libsndfile reads (wav, flac,
ogg, mp3, aiff). ``mixture`` is optional: the suite's protocol rebuilds the mixture as the sum
of the stems. MUSDB18's (non-HQ) layout, ``ROOT/{train,test}/<track>.stem.mp4``, is read too
(:mod:`.stem_files`, through ffmpeg).
"""

from __future__ import annotations

from pathlib import Path

from .. import STEMS
from ..audio import load_audio
from ..errors import DatasetError
from ..identity import file_fingerprint
from .base import Dataset, Stems, Track
from .stem_files import is_stem_file, track_from_stem_file

STEM_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
SUBSETS = ("train", "test")


def _stem_file(folder: Path, stem: str) -> Path | None:
    found = [folder / f"{stem}{ext}" for ext in STEM_EXTENSIONS if (folder / f"{stem}{ext}").is_file()]
    if len(found) > 1:
        raise DatasetError(f"{folder}: two files for stem {stem!r} ({', '.join(p.name for p in found)}); "
                           "keep one (an estimate written into a track folder would be scored as "
                           "its reference)")
    return found[0] if found else None


def _is_track_folder(folder: Path) -> bool:
    return any(_stem_file(folder, s) for s in STEMS)


def _load_folder(folder: Path) -> tuple[Stems, int]:
    stems: Stems = {}
    rates = {}
    for stem in STEMS:
        path = _stem_file(folder, stem)
        if path is None:
            raise DatasetError(f"{folder}: missing stem {stem!r} (expected {stem}.wav, .flac, "
                               ".ogg, .mp3 or .aiff beside the others)")
        stems[stem], rates[stem] = load_audio(path)
    if len(set(rates.values())) > 1:
        raise DatasetError(f"{folder}: stems have different sample rates {rates}; "
                           "resample them to one rate")
    return stems, rates[STEMS[0]]


def track_from_folder(folder: Path, subset: str) -> Track:
    folder = Path(folder)
    missing = [s for s in STEMS if _stem_file(folder, s) is None]
    if missing:
        raise DatasetError(f"{folder}: missing stem(s) {missing}; each track folder needs "
                           f"{', '.join(s + '.wav' for s in STEMS)} (or .flac, .ogg, .mp3, "
                           ".aiff)")
    files = [_stem_file(folder, s) for s in STEMS]
    fingerprint = ";".join(file_fingerprint(p, folder.parent) for p in files)
    return Track(name=folder.name, subset=subset, loader=lambda: _load_folder(folder),
                 source=str(folder), fingerprint=fingerprint)


def _tracks_in(root: Path, subset: str) -> list[Track]:
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    return [track_from_folder(p, subset) if p.is_dir() else track_from_stem_file(p, subset)
            for p in entries if p.is_dir() or is_stem_file(p)]


def _split_name(folder: Path) -> str:
    """A folder named train or test (MUSDB18's split folders) gives its tracks that subset."""
    return folder.name if folder.name in SUBSETS else ""


def open_folder(path: str | Path, subset: str | None = None, name: str | None = None) -> Dataset:
    """Open a MUSDB-layout root (with ``train``/``test``) or a plain folder of track folders.

    ``subset`` ("train" or "test") selects a split of a MUSDB-layout root; with ``None`` every
    split is read.
    """
    root = Path(path).expanduser()
    label = name or f"folder:{root}"
    if not root.exists():
        raise DatasetError(f"dataset path {root} does not exist; pass the folder that holds "
                           "train/ and test/ (MUSDB18-HQ) or the track folders")
    if not root.is_dir() and not is_stem_file(root):
        raise DatasetError(f"dataset path {root} is not a folder (nor a .stem.mp4 file)")
    if subset is not None and subset not in SUBSETS:
        raise DatasetError(f"unknown subset {subset!r}; use one of {', '.join(SUBSETS)}")
    splits = [s for s in SUBSETS if (root / s).is_dir()]
    if splits:
        chosen = [subset] if subset else splits
        if subset and subset not in splits:
            raise DatasetError(f"{root} has no {subset}/ folder (found: {', '.join(splits)})")
        tracks = [t for s in chosen for t in _tracks_in(root / s, s)]
    elif is_stem_file(root):
        tracks = [track_from_stem_file(root, subset or _split_name(root.parent))]
    elif _is_track_folder(root):
        tracks = [track_from_folder(root, subset or _split_name(root.parent))]
    else:
        if subset:
            raise DatasetError(f"{root} has no {subset}/ folder; it is not in MUSDB layout")
        tracks = _tracks_in(root, _split_name(root))
    if not tracks:
        raise DatasetError(f"no tracks found under {root}; expected <track>/{{"
                           f"{','.join(STEMS)}}}.wav folders or <track>.stem.mp4 files")
    return Dataset(label, tuple(tracks), from_files=True)
