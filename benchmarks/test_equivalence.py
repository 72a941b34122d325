"""torchaudio's HDemucs and demucs's HDemucs give the same output under demixbench's key
mapping (``hdemucs_torchaudio_equivalence.py`` as a test). torchaudio does not install beside
this project's CPU torch; point ``--torchaudio-src`` at a copy of its ``models/_hdemucs.py``.

    pytest benchmarks/test_equivalence.py --torchaudio-src PATH/_hdemucs.py
"""

from __future__ import annotations

import contextlib
import io
import sys

import pytest


def test_torchaudio_hdemucs_equivalence(request, tables):
    src = request.config.getoption("--torchaudio-src")
    if src is None:
        try:
            import torchaudio  # noqa: F401
        except ImportError:
            pytest.skip("no torchaudio here: pass --torchaudio-src PATH/_hdemucs.py")
    import hdemucs_torchaudio_equivalence as eq

    out = io.StringIO()
    old = sys.argv
    sys.argv = ["eq"] + (["--torchaudio-src", src] if src else [])
    try:
        with contextlib.redirect_stdout(out):
            code = eq.main()
    finally:
        sys.argv = old
    for line in out.getvalue().splitlines():
        tables.add("torchaudio HDemucs against demucs HDemucs", line)
    assert code == 0, out.getvalue()
