"""The estimate cache: separator estimates kept on disk, keyed by the separator's configuration
hash (code identity included) and a digest of the input audio, in a managed store.

- **Home**: :func:`demixbench.paths.estimate_cache_dir` (``~/.cache/demixbench/estimates`` by
  default, ``$DEMIXBENCH_ESTIMATE_CACHE`` or ``run --cache-dir`` elsewhere), never beside the
  results store or a user's output folder.
- **Size cap** with least-recently-used pruning: ``$DEMIXBENCH_CACHE_MAX_GB`` (default 4 GB);
  after each write the entries used longest ago are removed until the cache is under the cap.
  ``demixbench cache info|prune|clear`` shows and manages it. An index (SQLite, the standard
  library's, which serialises concurrent writers: Dask workers share a cache) records each
  entry's size and last use; entries found on disk without an index row are adopted.
- **Lossless, compact**: each stem's float32 samples are stored byte-shuffled (the four bytes
  of every sample grouped by significance, as Blosc's shuffle filter does) and compressed by
  ``numpy.savez_compressed`` (zlib); reading undoes both, bit for bit.
- **Checked on read**: the entry's stems, shape, dtype, finiteness and SHA-256 of every stem's
  samples. A wrong entry is never trusted: it is deleted, a notice names its file and why, and
  the estimate is computed again. Writes go to a temporary name and are renamed, so a killed
  run never leaves half an entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..interrupts import reraise_if_interrupted

DEFAULT_MAX_GB = 4.0
_META = "__meta__"
_FORMAT = "demixbench-estimates-2"


def input_key(mixture: np.ndarray, sample_rate: int,
              references: Mapping[str, np.ndarray] | None = None) -> str:
    """Digest of the input a separator sees: the mixture's samples, rate and (for oracles)
    the references."""
    h = hashlib.sha256()
    h.update(str((mixture.shape, str(mixture.dtype), int(sample_rate))).encode())
    h.update(np.ascontiguousarray(mixture).tobytes())
    for k in sorted(references or {}):
        h.update(k.encode())
        h.update(np.ascontiguousarray(references[k]).tobytes())
    return h.hexdigest()[:24]


def max_bytes_default() -> int:
    text = os.environ.get("DEMIXBENCH_CACHE_MAX_GB", "")
    try:
        gb = float(text) if text else DEFAULT_MAX_GB
    except ValueError:
        gb = DEFAULT_MAX_GB
    return int(max(gb, 0.0) * 1e9)


@dataclass
class CacheHit:
    estimates: dict[str, np.ndarray]
    conversions: list[str] = field(default_factory=list)


def _shuffle(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32).view(np.uint8).reshape(-1, 4).T.copy()


def _unshuffle(b: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.ascontiguousarray(b.T).view(np.float32).reshape(shape)


def _digest(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()[:32]


class EstimateCache:
    """The cache under ``root`` (see the module doc); ``max_bytes`` None: the default cap."""

    def __init__(self, root: str | Path, max_bytes: int | None = None):
        self.root = Path(root)
        self.max_bytes = max_bytes_default() if max_bytes is None else int(max_bytes)
        self.notices: list[str] = []  # entries found wrong and recomputed

    # -- the index ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _index(self):
        self.root.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.root / "index.sqlite", timeout=60)
        try:
            db.execute("CREATE TABLE IF NOT EXISTS entries (file TEXT PRIMARY KEY, "
                       "bytes INTEGER NOT NULL, used REAL NOT NULL)")
            with db:
                yield db
        finally:
            db.close()

    def _path(self, separator_hash: str, key: str) -> Path:
        return self.root / separator_hash / f"{key}.npz"

    def _name(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    # -- reading and writing -------------------------------------------------------------------
    def get(self, separator_hash: str, key: str, sources: tuple[str, ...] | None = None,
            shape: tuple[int, ...] | None = None) -> CacheHit | None:
        """The entry, checked (see the module doc), or None to compute it."""
        path = self._path(separator_hash, key)
        if not path.is_file():
            return None
        try:
            hit = self._read(path, sources, shape)
        except Exception as exc:  # anything wrong with the entry: recompute, and say so
            reraise_if_interrupted(exc)  # Ctrl-C inside np.load is not a bad entry
            why = str(exc) or type(exc).__name__
            self.notices.append(f"estimate cache entry {path} is not valid ({why}); deleted "
                                "and computed again")
            self._remove(path)
            return None
        with contextlib.suppress(sqlite3.Error, OSError):
            with self._index() as db:
                db.execute("INSERT OR REPLACE INTO entries VALUES (?,?,?)",
                           (self._name(path), path.stat().st_size, time.time()))
        return hit

    def _read(self, path: Path, sources, shape) -> CacheHit:
        with np.load(path, allow_pickle=False) as data:
            if _META not in data.files:
                raise ValueError("no metadata: written by an older demixbench")
            meta = json.loads(str(data[_META]))
            if meta.get("format") != _FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {_FORMAT}")
            stems = meta["stems"]
            if sources is not None and set(stems) != set(sources):
                raise ValueError(f"stems {sorted(stems)}, expected {sorted(sources)}")
            out = {}
            for stem, info in stems.items():
                est_shape = tuple(info["shape"])
                if shape is not None and est_shape != tuple(shape):
                    raise ValueError(f"{stem} has shape {est_shape}, expected {tuple(shape)}")
                est = _unshuffle(data[stem], est_shape)
                if _digest(est) != info["sha256"]:
                    raise ValueError(f"{stem}'s samples do not match their SHA-256")
                if not np.all(np.isfinite(est)):
                    raise ValueError(f"{stem} holds NaN or Inf")
                out[stem] = est
        return CacheHit(out, list(meta.get("conversions", [])))

    def put(self, separator_hash: str, key: str, estimates: Mapping[str, np.ndarray],
            conversions: list[str] | None = None) -> None:
        path = self._path(separator_hash, key)
        meta = {"format": _FORMAT, "conversions": list(conversions or []),
                "stems": {k: {"shape": list(v.shape), "sha256": _digest(v)}
                          for k, v in estimates.items()}}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
            np.savez_compressed(tmp, **{k: _shuffle(v) for k, v in estimates.items()},
                                **{_META: np.array(json.dumps(meta))})
            os.replace(tmp, path)
            with self._index() as db:
                db.execute("INSERT OR REPLACE INTO entries VALUES (?,?,?)",
                           (self._name(path), path.stat().st_size, time.time()))
            self.prune()
        except (OSError, sqlite3.Error):  # a cache that cannot be written costs time, never results
            pass

    # -- management ---------------------------------------------------------------------------
    def _remove(self, path: Path) -> int:
        size = path.stat().st_size if path.exists() else 0
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # only when empty
        with contextlib.suppress(sqlite3.Error, OSError):
            with self._index() as db:
                db.execute("DELETE FROM entries WHERE file=?", (self._name(path),))
        return size

    def _sync(self, db) -> None:
        """Adopt entries on disk the index does not know; forget rows whose file is gone."""
        known = {f for (f,) in db.execute("SELECT file FROM entries")}
        on_disk = {self._name(p): p for p in self.root.glob("*/*.npz")
                   if not p.name.startswith(".")}
        for name in set(on_disk) - known:
            st = on_disk[name].stat()
            db.execute("INSERT INTO entries VALUES (?,?,?)", (name, st.st_size, st.st_mtime))
        for name in known - set(on_disk):
            db.execute("DELETE FROM entries WHERE file=?", (name,))

    def info(self) -> dict:
        if not self.root.exists():
            return {"root": str(self.root), "entries": 0, "bytes": 0, "max_bytes": self.max_bytes,
                    "separators": 0}
        with self._index() as db:
            self._sync(db)
            n, size = db.execute("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM entries").fetchone()
            seps = db.execute("SELECT COUNT(DISTINCT substr(file, 1, instr(file, '/'))) "
                              "FROM entries").fetchone()[0]
        return {"root": str(self.root), "entries": n, "bytes": size, "max_bytes": self.max_bytes,
                "separators": seps}

    def prune(self, max_bytes: int | None = None, sync: bool = False) -> tuple[int, int]:
        """Remove the least recently used entries until the cache holds at most
        ``max_bytes`` (default: its cap). Returns ``(entries removed, bytes freed)``."""
        cap = self.max_bytes if max_bytes is None else int(max_bytes)
        with self._index() as db:
            if sync:
                self._sync(db)
            total = db.execute("SELECT COALESCE(SUM(bytes), 0) FROM entries").fetchone()[0]
            if total <= cap:
                return 0, 0
            victims = []
            for name, size in db.execute("SELECT file, bytes FROM entries ORDER BY used"):
                if total <= cap:
                    break
                victims.append(name)
                total -= size
        removed = freed = 0
        for name in victims:
            freed += self._remove(self.root / name)
            removed += 1
        return removed, freed

    def clear(self) -> tuple[int, int]:
        """Remove every entry. Returns ``(entries removed, bytes freed)``."""
        return self.prune(0, sync=True)
