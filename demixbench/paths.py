"""Where demixbench keeps what it can make again: one home for caches, apart from anything a
user writes (stores, reports, ``separate -o`` folders).

``$DEMIXBENCH_CACHE_HOME``, else ``$XDG_CACHE_HOME/demixbench``, else
``~/.cache/demixbench``; beneath it ``estimates/`` (the estimate cache, overridable with
``$DEMIXBENCH_ESTIMATE_CACHE`` or ``run --cache-dir``), ``synthetic/`` (rendered synthetic
songs) and ``file-digests.jsonl`` (content digests of dataset files). Model weights keep their
own, shared home (torch hub's, :mod:`demixbench.weights`)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_STORE = Path(".demixbench") / "results.sqlite"  # the results store, beside the work


def cache_home() -> Path:
    env = os.environ.get("DEMIXBENCH_CACHE_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "demixbench"


def estimate_cache_dir() -> Path:
    env = os.environ.get("DEMIXBENCH_ESTIMATE_CACHE")
    return Path(env).expanduser() if env else cache_home() / "estimates"
