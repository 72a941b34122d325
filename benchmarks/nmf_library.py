"""KL-NMF: scikit-learn's ``non_negative_factorization`` (solver "mu", what
:func:`demixbench.separators.nmf.nmf` uses) against the multiplicative updates demixbench wrote
by hand before, on the demo set.

    python benchmarks/nmf_library.py

For both separators that use NMF (``nmf_supervised``: fixed dictionaries, activations only;
``hpss_nmf``: a dictionary and activations per band) it runs the two implementations for the
same number of iterations, and prints the time of the separations and the mean uSDR / SI-SDR
over the demo tracks' stems.
"""

from __future__ import annotations

import time
from unittest import mock

import numpy as np

from demixbench import STEMS
from demixbench.datasets import demo_dataset
from demixbench.metrics import score_track
from demixbench.separators import classic, nmf


def handwritten_nmf(V, n_components, *, iterations=100, loss="kl", W=None, update_W=True,
                    seed=0):
    """The multiplicative KL updates demixbench wrote by hand before it used scikit-learn."""
    eps = 1e-12
    V = np.asarray(V, dtype=np.float64)
    F, T = V.shape
    rng = np.random.default_rng(seed)
    scale = np.sqrt(max(V.mean(), eps) / n_components)
    W = rng.uniform(0.5, 1.5, (F, n_components)) * scale if W is None else np.array(W, float)
    H = rng.uniform(0.5, 1.5, (W.shape[1], T)) * scale
    for _ in range(iterations):
        WH = W @ H + eps
        H *= (W.T @ (V / WH)) / (W.sum(axis=0)[:, None] + eps)
        if update_W:
            WH = W @ H + eps
            W *= ((V / WH) @ H.T) / (H.sum(axis=1)[None, :] + eps)
    if update_W:
        norms = W.sum(axis=0) + eps
        W, H = W / norms, H * norms[:, None]
    return W, H


def measure(name: str, make) -> None:
    for label, impl in (("hand-written", handwritten_nmf), ("scikit-learn", nmf.nmf)):
        with mock.patch.object(nmf, "nmf", impl), mock.patch.object(classic, "nmf", impl):
            sep = make()
            seconds, usdr, sisdr = 0.0, [], []
            for track in demo_dataset():
                stems, sr = track.load()
                mixture = np.sum([stems[k] for k in STEMS], axis=0)
                t0 = time.perf_counter()
                est = sep.separate(mixture, sr)
                seconds += time.perf_counter() - t0
                for s in score_track(stems, est, ["usdr", "si_sdr"], sr):
                    if s.target in STEMS and np.isfinite(s.value):
                        (usdr if s.metric == "usdr" else sisdr).append(s.value)
        print(f"{name:<15} {label:<13} {seconds:6.2f} s for 2 x 15 s   mean uSDR {np.mean(usdr):6.2f} dB"
              f"   mean SI-SDR {np.mean(sisdr):6.2f} dB", flush=True)


if __name__ == "__main__":
    measure("nmf_supervised", lambda: nmf.NMFSupervised())
    measure("hpss_nmf", lambda: classic.HPSSNMF())
