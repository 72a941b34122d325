"""Shared fixtures: short synthetic tracks and helpers. Nothing here touches the network or
writes outside pytest's temporary folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from demixbench import STEMS
from demixbench.audio import write_audio
from demixbench.datasets.synthetic import synthesize_track

SR = 44100
SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def short_track() -> dict[str, np.ndarray]:
    """A 3 s synthetic track (four stereo stems at 44.1 kHz)."""
    return synthesize_track(seed=7, seconds=3.0)


@pytest.fixture
def musdb_folder(tmp_path, short_track) -> Path:
    """A MUSDB-layout folder with one test track written from ``short_track``."""
    folder = tmp_path / "musdb" / "test" / "song"
    for k in STEMS:
        write_audio(folder / f"{k}.wav", short_track[k], SR)
    return tmp_path / "musdb"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
