"""MUSDB18's (non-HQ) ``.stem.mp4`` files: one MP4 with five audio streams, in the order
mixture, drums, bass, other, vocals (the Native Instruments stems format).

Decoded by the ``ffmpeg`` command-line tool (``ffprobe`` lists the streams, ``ffmpeg`` writes
each stem as raw float32 to a pipe): ffmpeg is what reads AAC in MP4 everywhere, and libsndfile
does not. stempeg (musdb's reader) wraps the same two tools; calling them directly avoids its
import-time checks and keeps the dependency to the binary a user installs anyway. The mixture
stream is not read: the suite's protocol rebuilds the mixture as the sum of the stems.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np

from .. import STEMS
from ..errors import DatasetError
from ..identity import file_fingerprint
from .base import Stems, Track

SUFFIX = ".stem.mp4"
STREAM_ORDER = ("mixture",) + tuple(STEMS)  # MUSDB18's stream order: mixture, drums, bass, ...

INSTALL_HINT = ("reading MUSDB18 .stem.mp4 files needs the ffmpeg and ffprobe programs: install "
                "them (apt install ffmpeg, brew install ffmpeg or conda install -c conda-forge "
                "ffmpeg), or use the MUSDB18-HQ wav folders")


def is_stem_file(path: Path) -> bool:
    return path.is_file() and path.name.endswith(SUFFIX)


def _tools() -> tuple[str, str]:
    ffmpeg, ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    if not ffmpeg or not ffprobe:
        raise DatasetError(INSTALL_HINT)
    return ffmpeg, ffprobe


def _streams(ffprobe: str, path: Path) -> list[dict]:
    cmd = [ffprobe, "-v", "error", "-select_streams", "a", "-show_entries",
           "stream=index,channels,sample_rate", "-of", "json", str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise DatasetError(f"{path}: ffprobe cannot read it ({done.stderr.strip().splitlines()[-1:]}"
                           "); is it a MUSDB18 .stem.mp4 file?")
    return json.loads(done.stdout).get("streams", [])


def read_stem_file(path: Path) -> tuple[Stems, int]:
    """The four stems ``{name: (channels, samples) float32}`` and the sample rate."""
    ffmpeg, ffprobe = _tools()
    streams = _streams(ffprobe, path)
    if len(streams) < len(STREAM_ORDER):
        raise DatasetError(f"{path}: {len(streams)} audio stream(s), a stem file has "
                           f"{len(STREAM_ORDER)} ({', '.join(STREAM_ORDER)})")
    rates = {int(s["sample_rate"]) for s in streams[1:len(STREAM_ORDER)]}
    if len(rates) > 1:
        raise DatasetError(f"{path}: the stem streams have different sample rates {sorted(rates)}")
    rate = rates.pop()
    stems: Stems = {}
    for k, name in enumerate(STREAM_ORDER[1:], start=1):
        channels = int(streams[k]["channels"])
        cmd = [ffmpeg, "-v", "error", "-nostdin", "-i", str(path), "-map", f"0:a:{k}",
               "-f", "f32le", "-acodec", "pcm_f32le", "-"]
        done = subprocess.run(cmd, capture_output=True)
        if done.returncode != 0:
            message = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
            raise DatasetError(f"{path}: ffmpeg could not decode stream {k} ({name}): {message}")
        samples = np.frombuffer(done.stdout, dtype="<f4")
        stems[name] = samples.reshape(-1, channels).T.copy()
    # AAC streams may differ by a few samples at the end: keep the common length
    n = min(x.shape[1] for x in stems.values())
    return {k: v[:, :n] for k, v in stems.items()}, rate


def track_from_stem_file(path: Path, subset: str) -> Track:
    _tools()  # a clear error at open time, not at the first load
    return Track(name=path.name[: -len(SUFFIX)], subset=subset,
                 loader=lambda: read_stem_file(path), source=str(path),
                 fingerprint=file_fingerprint(path, path.parent))
