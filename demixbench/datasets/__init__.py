"""Datasets: the MUSDB18-HQ layout reader, the embedded ``synthetic`` and ``demo`` sets, the
excerpt protocol, and :func:`open_dataset` that parses the CLI's ``--dataset`` spec."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from .. import STEMS
from ..audio import write_audio
from ..errors import DatasetError
from ..interrupts import reraise_if_interrupted
from ..paths import cache_home
from ..plugins import PluginRegistry
from .base import Dataset, Stems, Track, check_stems
from .excerpt import Excerpt, choose_excerpt, cut_and_mix
from .folder import open_folder
from .synthetic import GENERATOR_VERSION, SAMPLE_RATE, synthesize_track

DEFAULT_SYNTHETIC_TRACKS = 3
DEFAULT_SYNTHETIC_SECONDS = 8.0
_SPLIT_SEED = {"test": 0, "train": 1_000_000}

__all__ = ["Dataset", "DatasetRegistry", "Excerpt", "Stems", "Track", "check_stems",
           "choose_excerpt", "cut_and_mix", "dataset_registry", "demo_dataset", "open_dataset",
           "open_folder", "synthetic_dataset", "write_dataset"]


@lru_cache(maxsize=16)  # 8 s songs: 11 MB each; rendering one takes ~2 s
def _synthesized(seed: int, seconds: float) -> dict:
    """A rendered synthetic song, kept in memory and on disk: runs, strategies, Dask workers and
    separate processes load the same songs again. The disk copy (``.npy`` per stem, under
    ``synthetic/`` in :func:`demixbench.paths.cache_home`, or ``$DEMIXBENCH_SYNTHETIC_CACHE``; ``off``
    disables it) is keyed by the generator's source code, so a changed generator renders anew."""
    folder = _synthetic_cache() / f"{_generator_digest()}-{seed}-{seconds:g}"
    try:
        return {k: np.load(folder / f"{k}.npy") for k in STEMS}
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:  # a broken copy: replaced below
        reraise_if_interrupted(exc)
        shutil.rmtree(folder, ignore_errors=True)
    stems = synthesize_track(seed, seconds)
    if _synthetic_cache() != Path(os.devnull):
        with contextlib.suppress(OSError):  # a read-only or full disk: just not kept
            tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
            tmp.mkdir(parents=True, exist_ok=True)
            for k, v in stems.items():
                np.save(tmp / f"{k}.npy", v)
            tmp.rename(folder)  # whole or not at all; a concurrent writer's copy wins
    return stems


def _synthetic_cache() -> Path:
    env = os.environ.get("DEMIXBENCH_SYNTHETIC_CACHE", "")
    if env.lower() == "off":
        return Path(os.devnull)
    if env:
        return Path(env).expanduser()
    return cache_home() / "synthetic"


@lru_cache(maxsize=1)
def _generator_digest() -> str:
    from . import synthetic

    return hashlib.sha256(Path(synthetic.__file__).read_bytes()).hexdigest()[:16]


def synthetic_dataset(n_tracks: int = DEFAULT_SYNTHETIC_TRACKS, subset: str = "test",
                      seconds: float = DEFAULT_SYNTHETIC_SECONDS) -> Dataset:
    """``n_tracks`` deterministic synthetic songs; ``train`` and ``test`` use disjoint seeds."""
    if subset not in _SPLIT_SEED:
        raise DatasetError(f"synthetic: unknown subset {subset!r}; use train or test")
    if n_tracks < 1:
        raise DatasetError(f"synthetic: need at least one track, got {n_tracks}")
    tracks = []
    for i in range(n_tracks):
        seed = _SPLIT_SEED[subset] + i

        def load(seed=seed):
            return {k: v.copy() for k, v in _synthesized(seed, seconds).items()}, SAMPLE_RATE

        tracks.append(Track(f"synthetic-{subset}-{i:03d}", subset, load, f"synthetic seed={seed}",
                            f"synthetic v{GENERATOR_VERSION} seed={seed} seconds={seconds}"))
    return Dataset(f"synthetic:{n_tracks}" + (f":{subset}" if subset != "test" else ""),
                   tuple(tracks))


def demo_path() -> Path:
    """Folder of the embedded CC0 demo excerpts (package data)."""
    return Path(str(resources.files("demixbench.datasets") / "demo"))


def demo_dataset() -> Dataset:
    """The two 15 s CC0 excerpts of real music shipped with the package ("Everything is Free"
    by Software-Entwicklungskit). ``6.Caesium`` has a silent bass stem."""
    return open_folder(demo_path(), name="demo")


def open_synthetic(rest: str, spec: str) -> Dataset:
    """``synthetic[:N[:SUBSET]]``: N deterministic synthetic songs (default 3)."""
    parts = [p for p in rest.split(":") if p] if rest else []
    try:
        n = int(parts[0]) if parts else DEFAULT_SYNTHETIC_TRACKS
    except ValueError:
        raise DatasetError(f"--dataset {spec}: the track count must be an integer, "
                           "e.g. synthetic:5") from None
    return synthetic_dataset(n, parts[1] if len(parts) > 1 else "test")


def open_demo(rest: str, spec: str) -> Dataset:
    """``demo``: the two embedded 15 s CC0 excerpts."""
    if rest:
        raise DatasetError(f"--dataset {spec}: demo takes no argument; use --dataset demo")
    return demo_dataset()


def open_musdb_layout(rest: str, spec: str) -> Dataset:
    """``musdb:PATH[:SUBSET]`` or ``folder:PATH[:SUBSET]``: MUSDB18-HQ layout folders."""
    kind = spec.partition(":")[0]
    if not rest:
        raise DatasetError(f"--dataset {spec}: give a path, e.g. {kind}:/data/musdb18hq")
    path, subset = rest, None
    head, sep, tail = rest.rpartition(":")
    if sep and tail in ("train", "test"):
        path, subset = head, tail
    return open_folder(path, subset, name=spec)


class DatasetRegistry(PluginRegistry):
    """Dataset openers by spec prefix: ``prefix:REST`` -> ``opener(REST, spec) -> Dataset``."""

    kind = "dataset"

    def error(self, message: str) -> Exception:
        return DatasetError(message)

    def check(self, entry, obj) -> str | None:
        if not callable(obj):
            return ("is not callable; point the entry point at a function "
                    "opener(rest: str, spec: str) -> demixbench.datasets.Dataset")
        return None


@lru_cache(maxsize=1)
def dataset_registry() -> DatasetRegistry:
    """The installed dataset openers (read once per process)."""
    return DatasetRegistry()


def open_dataset(spec: str) -> Dataset:
    """Open a dataset from a CLI spec ``PREFIX[:REST]``, the prefix naming a registered opener.

    Built in: ``synthetic[:N[:SUBSET]]`` | ``demo`` | ``musdb:PATH[:SUBSET]`` | ``folder:PATH``.
    """
    kind, _, rest = spec.partition(":")
    registry = dataset_registry()
    if kind not in registry:
        raise DatasetError(f"unknown dataset {spec!r}; use synthetic[:N], demo, musdb:PATH[:SUBSET], "
                           f"folder:PATH or a registered prefix ({', '.join(registry.names())})")
    dataset = registry.get(kind)(rest, spec)
    if not isinstance(dataset, Dataset):
        raise DatasetError(f"dataset plugin {kind!r} returned {type(dataset).__name__}, not a "
                           "demixbench.datasets.Dataset")
    return dataset


def write_dataset(dataset: Dataset, root: str | Path, fmt: str = "wav") -> Path:
    """Write a dataset in the MUSDB18-HQ layout (``root/<subset>/<track>/<stem>.<fmt>``), the
    mixture being the sum of the stems."""
    root = Path(root)
    for track in dataset:
        stems, sr = track.load()
        folder = root / (track.subset or "test") / track.name
        for k in STEMS:
            write_audio(folder / f"{k}.{fmt}", stems[k], sr)
        write_audio(folder / f"mixture.{fmt}", sum(stems[k] for k in STEMS), sr)
    return root
