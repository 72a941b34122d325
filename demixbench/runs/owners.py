"""Who works on a run: ``host:pid`` of every live process that opened it, so a run is
crashed only when all of them have ended (not when the last writer did)."""

from __future__ import annotations

import json
import os
import socket


def current_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owners_of(text: str | None) -> list[str]:
    """The processes working on a run (a JSON list; one plain ``host:pid`` in older stores)."""
    if not text:
        return []
    try:
        owners = json.loads(text)
    except ValueError:
        return [text]
    return [str(o) for o in owners] if isinstance(owners, list) else [str(owners)]


def owner_alive(owner: str | None) -> bool:
    """Whether the process that owns a running run still runs (on this host; other hosts'
    processes are taken as alive)."""
    if not owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
