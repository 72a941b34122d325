"""Stem layouts scored by demixbench against museval's own ``eval_mus_track``, on the demo set.

    python benchmarks/layouts_vs_museval.py [--separators spleeter_2stems,hpss_repet]

For each separator, each demo track (15 s, CC0) is separated, scored by ``score_track`` (every
BSS Eval group, the numpy backend) and by museval's ``eval_mus_track`` on a stand-in for a musdb
track (museval's package imports musdb, which needs ffmpeg; a stub module takes its place). It
prints per target the largest |difference| in dB of the per-track SDR/ISR/SIR/SAR (median of
frames) and which targets museval scores. Silent stems are left out of the track as museval
would raise on them (demo 6.Caesium has no bass).
"""

from __future__ import annotations

import argparse
import sys
import types
from collections import OrderedDict

import numpy as np

from demixbench import STEMS
from demixbench.datasets import demo_dataset
from demixbench.metrics import score_track, with_accompaniment
from demixbench.separators import default_registry, separate_adapted

sys.modules.setdefault("musdb", types.ModuleType("musdb"))
import museval  # noqa: E402

BSS = ("sdr", "isr", "sir", "sar")


class _Target:
    def __init__(self, audio):
        self.audio = audio.T


class _Track:
    def __init__(self, name, refs, rate):
        self.name, self.rate = name, rate
        self.targets = OrderedDict((k, _Target(refs[k])) for k in
                                   ("vocals", "drums", "bass", "other", "accompaniment") if k in refs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--separators", default="spleeter_2stems,hpss_repet")
    args = p.parse_args()
    reg = default_registry()
    for name in args.separators.split(","):
        sep = reg.create(name)
        worst = {}
        for track in demo_dataset():
            stems, sr = track.load()
            mixture = np.sum([stems[k] for k in STEMS], axis=0)
            est, _ = separate_adapted(sep, mixture, sr)
            all_refs, all_ests = with_accompaniment(stems), with_accompaniment(est)
            refs = {k: v for k, v in all_refs.items() if k in all_ests and np.any(v)}
            ests = {k: all_ests[k] for k in refs}
            ours = {(s.target, s.metric): s.value for s in score_track(refs, ests, list(BSS), sr)}
            store = museval.eval_mus_track(_Track(track.name, refs, sr), {k: v.T for k, v in ests.items()})
            for target in store.scores["targets"]:
                for m in BSS:
                    frames = np.array([float(f["metrics"][m.upper()]) for f in target["frames"]])
                    gap = abs(ours[target["name"], m] - np.nanmedian(frames))
                    key = (target["name"], m)
                    worst[key] = max(worst.get(key, 0.0), gap)
        for target in dict.fromkeys(t for t, _ in worst):
            print(f"{name:<16} {target:<14} " + "  ".join(
                f"{m} {worst[target, m]:.1e}" for m in BSS), flush=True)


if __name__ == "__main__":
    main()
