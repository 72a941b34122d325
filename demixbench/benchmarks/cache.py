"""On-disk cache of separator estimates, keyed by the separator's config hash and the input.

Entries are ``<root>/<separator hash>/<input hash>.npz``, written to a temporary name and
renamed, so a killed run never leaves a half-written entry that a later run would trust. An
entry holds the estimates and the conversions made to compute them, so a cache hit records the
same conversions as the computation did. An entry that cannot be read (truncated, corrupt) is
deleted and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
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


_CONVERSIONS = "__conversions__"


@dataclass
class CacheHit:
    estimates: dict[str, np.ndarray]
    conversions: list[str] = field(default_factory=list)


class EstimateCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, separator_hash: str, key: str) -> Path:
        return self.root / separator_hash / f"{key}.npz"

    def get(self, separator_hash: str, key: str) -> CacheHit | None:
        path = self._path(separator_hash, key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                estimates = {k: data[k] for k in data.files if k != _CONVERSIONS}
                conversions = (json.loads(str(data[_CONVERSIONS])) if _CONVERSIONS in data.files
                               else [])
        except Exception:  # truncated or corrupt (BadZipFile, EOFError, ...): recompute
            path.unlink(missing_ok=True)
            return None
        return CacheHit(estimates, conversions)

    def put(self, separator_hash: str, key: str, estimates: Mapping[str, np.ndarray],
            conversions: list[str] | None = None) -> None:
        path = self._path(separator_hash, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
            np.savez(tmp, **estimates, **{_CONVERSIONS: np.array(json.dumps(conversions or []))})
            os.replace(tmp, path)
        except OSError:  # a cache that cannot be written costs time, never results
            pass
