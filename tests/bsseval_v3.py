"""BSS Eval images with filters fitted in every frame (museval v3 / mir_eval's framewise
images), built from the runtime package's steps. Only the tests use it: it checks those steps
against the MATLAB toolbox's numbers in mir_eval's reference vectors."""

from __future__ import annotations

import numpy as np

from demixbench.metrics.bsseval.correlations import FILTER_LEN, _FrameStats, frame_correlations, framing
from demixbench.metrics.bsseval.energies import ExplicitFrames, _Energies
from demixbench.metrics.bsseval.images import _frame_groups
from demixbench.metrics.bsseval.solve import projection_filters


def bss_eval_images_v3(references: np.ndarray, estimates: np.ndarray, win: int, hop: int,
                       lags: int = FILTER_LEN) -> tuple[np.ndarray, dict]:
    """The same with filters fitted in every frame (museval v3 / mir_eval framewise images):
    each frame's correlations give both its filters and its energies."""
    nsrc, n, nchan = references.shape
    starts, width = framing(n, win, hop)
    out = np.full((4, nsrc, len(starts)), np.nan)
    info: dict = {"solvers": [], "recomputed_frames": 0}
    for g in _frame_groups(len(starts), nsrc * nchan, lags):
        stats = _FrameStats(g.stop - g.start, nsrc, nchan)
        corr = frame_correlations(references, estimates, starts[g], width, lags, stats)
        silent = stats.derived(corr)[3]
        for i, t in enumerate(range(g.start, g.stop)):
            if silent[i]:
                continue
            v_all, v_own, methods = projection_filters(corr[i], nsrc, nchan)
            sub = stats.subset(slice(i, i + 1))
            vals, unsure = _Energies(v_all, v_own, nsrc, nchan).values(corr[i:i + 1], sub)
            if unsure[0]:
                vals[:, :, 0] = ExplicitFrames(v_all, v_own, nsrc, nchan, width).values(
                    references, estimates, int(starts[t]))
                info["recomputed_frames"] += 1
            out[:, :, t] = vals[:, :, 0]
            info["solvers"] = methods
    return out, info
