"""Agreement suites: BSS Eval v4 against museval on every frame, the stem layouts against
museval's ``eval_mus_track``, and NMF by scikit-learn against the hand-written updates it
replaced. They run the functions of ``bsseval_agreement.py``, ``layouts_vs_museval.py`` and
``nmf_library.py`` and keep their printed tables.

    pytest benchmarks/test_agreement.py
"""

from __future__ import annotations

import contextlib
import io
import sys

import bsseval_agreement as agreement
import numpy as np
import pytest

from demixbench.datasets import demo_dataset
from demixbench.datasets.synthetic import synthesize_track
from demixbench.metrics import bss_eval_v4


def _cases():
    for seed in range(3):
        yield f"synthetic seed={seed}", synthesize_track(seed, 10.0)
    for track in demo_dataset():
        yield f"CC0 {track.name}", track.load()[0]


@pytest.mark.parametrize("label,stems", list(_cases()), ids=lambda x: x if isinstance(x, str) else "")
def test_bsseval_matches_museval_on_every_frame(tables, label, stems):
    refs, ests = agreement.irm1_case(stems)
    ours = np.stack(bss_eval_v4(refs, ests, backend="numpy"))
    ref = np.stack(bss_eval_v4(refs, ests, backend="museval"))
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    with np.errstate(invalid="ignore"):
        gap = np.where(ours == ref, 0.0, np.abs(ours - ref))
    worst = [float(np.nanmax(g)) if np.any(~np.isnan(g)) else 0.0 for g in gap]
    tables.add("BSS Eval v4 against museval: largest |difference| over every frame (dB)",
               f"{label:<28} " + "  ".join(f"{n} {d:.1e}" for n, d in zip(agreement.NAMES, worst)))
    assert max(worst) <= 4e-5


def _captured(fn, *argv: str) -> str:
    out = io.StringIO()
    old = sys.argv
    sys.argv = ["benchmark", *argv]
    try:
        with contextlib.redirect_stdout(out):
            fn()
    finally:
        sys.argv = old
    return out.getvalue()


def test_layouts_match_museval_eval_mus_track(tables):
    import layouts_vs_museval

    text = _captured(layouts_vs_museval.main, "--separators", "hpss_repet")
    for line in text.splitlines():
        tables.add("stem layouts against museval's eval_mus_track", line)
    assert text.strip()


def test_nmf_by_scikit_learn_against_the_hand_written_updates(tables):
    import nmf_library

    from demixbench.separators import classic, nmf

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        nmf_library.measure("hpss_nmf", lambda: classic.HPSSNMF())
        nmf_library.measure("nmf_supervised", lambda: nmf.NMFSupervised())
    for line in out.getvalue().splitlines():
        tables.add("NMF: scikit-learn against the hand-written updates (demo, 2 x 15 s)", line)
    assert "scikit-learn" in out.getvalue()
