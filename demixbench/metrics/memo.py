"""What a metric computed from one signal, kept for the next call in this process: a benchmark
scores every separator and strategy step of a track against the same references, so their
mel spectrograms (bleedless, fullness), BSS Eval frame correlations and Gram factorisations
are computed once per track instead of once per estimate.

:class:`KeptBytes` is cachetools' ``LRUCache`` (the least recently used entries go first),
bounded by the bytes of its values through ``getsizeof``, behind a lock: cachetools' caches
are not thread-safe, and the correlation pass and a Dask worker's threads share these.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

from cachetools import LRUCache


class KeptBytes:
    """A thread-safe LRU memo holding at most ``max_bytes`` of values (``sizeof(value)``
    bytes each). A value larger than the whole budget is not kept."""

    def __init__(self, max_bytes: int, sizeof: Callable[[Any], int]):
        self._cache = LRUCache(max_bytes, getsizeof=sizeof)
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        """The value kept for ``key`` (now the most recently used), or None."""
        with self._lock:
            return self._cache.get(key)

    def put(self, key: Hashable, value: Any) -> bool:
        """Keep ``value`` (again, if it changed size), dropping the least recently used values
        beyond the budget; False where it alone exceeds it."""
        with self._lock:
            try:
                self._cache[key] = value
            except ValueError:  # larger than max_bytes
                self._cache.pop(key, None)
                return False
        return True

    @property
    def max_bytes(self) -> int:
        return int(self._cache.maxsize)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def nbytes(self) -> int:
        """The bytes its values hold."""
        return int(self._cache.currsize)
