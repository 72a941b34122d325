"""On-disk cache of separator estimates, keyed by the separator's config hash and the input.

Entries are ``<root>/<separator hash>/<input hash>.npz``, written to a temporary name and
renamed, so a killed run never leaves a half-written entry that a later run would trust.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np


def input_key(mixture: np.ndarray, sample_rate: int,
              references: Mapping[str, np.ndarray] | None = None) -> str:
    h = hashlib.sha256()
    h.update(str((mixture.shape, str(mixture.dtype), int(sample_rate))).encode())
    h.update(np.ascontiguousarray(mixture).tobytes())
    for k in sorted(references or {}):
        h.update(k.encode())
        h.update(np.ascontiguousarray(references[k]).tobytes())
    return h.hexdigest()[:24]


class EstimateCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, separator_hash: str, key: str) -> Path:
        return self.root / separator_hash / f"{key}.npz"

    def get(self, separator_hash: str, key: str) -> dict[str, np.ndarray] | None:
        path = self._path(separator_hash, key)
        if not path.is_file():
            return None
        try:
            with np.load(path) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError):
            return None  # unreadable entry: recompute (and overwrite) rather than fail

    def put(self, separator_hash: str, key: str, estimates: Mapping[str, np.ndarray]) -> None:
        path = self._path(separator_hash, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **estimates)
        os.replace(tmp, path)
