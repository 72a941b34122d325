"""Ctrl-C that stays Ctrl-C. Python raises ``KeyboardInterrupt`` from its SIGINT handler at the
next bytecode, and code in C that is running then may turn it into another exception: numpy's
``fromfile`` (under ``np.load``) reports it as a ``TypeError``, for one. A broad ``except``
around such code (a cache entry that will not read, audio that will not decode) would then
take the user's Ctrl-C for bad data and carry on, or end the run as "failed".

:func:`install` (the CLI calls it) sets a handler that records the interrupt before raising;
code that catches broadly calls :func:`reraise_if_interrupted` first, and the CLI and the run
loop ask :func:`interrupted` whatever exception reaches them."""

from __future__ import annotations

import signal
import threading

_PRESSED = threading.Event()


def _on_sigint(signum, frame) -> None:
    _PRESSED.set()
    raise KeyboardInterrupt


def install() -> None:
    """Record Ctrl-C in this process (the main thread only may set a handler; elsewhere this
    does nothing, and Python's default handler stays)."""
    _PRESSED.clear()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)


def interrupted() -> bool:
    """Whether Ctrl-C was pressed since :func:`install`."""
    return _PRESSED.is_set()


def reraise_if_interrupted(exc: BaseException) -> None:
    """Raise ``KeyboardInterrupt`` (from ``exc``) if Ctrl-C is why ``exc`` was raised."""
    if interrupted() and not isinstance(exc, KeyboardInterrupt):
        raise KeyboardInterrupt from exc
