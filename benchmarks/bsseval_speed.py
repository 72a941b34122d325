"""BSS Eval v4 speed against museval at excerpt lengths from 10 s to minutes, on real music.

    python benchmarks/bsseval_speed.py [--lengths 10,15,30,60,300] [--rounds 2]
    python benchmarks/bsseval_speed.py --factorisation [--lengths 15]

The music is the two demo excerpts of ``../shared/data/cc0-multitrack`` (15 s each, FLAC,
full band), laid end to end as often as a length needs (2.Lithium, 6.Caesium, 2.Lithium, ...);
the estimates are the ideal ratio mask's (``irm1``). At each length museval and this
project's numpy backend run interleaved in this process (each museval run followed by the
numpy runs, so both see the same state of the machine). The numpy backend is timed twice:
on a first call for these references ("first estimate": nothing kept from earlier calls),
and on another estimate of the same references right after ("next estimate": the
references' correlations and the Gram systems' factorisations are kept from the first
call, as when a benchmark scores every separator and strategy step of a track). The table
gives the medians, the ratios to museval, the largest difference of any frame's
SDR / ISR / SIR / SAR from museval's on the first estimate, and whether the next estimate's
values are bitwise those of a call that kept nothing.

``--factorisation`` times only the block Levinson factorisations of a first call (the full
Gram system, and the own-reference systems stacked), on one thread, median of 7: the part of
a first call on short excerpts that does not depend on the length.

The lossy-coded whole songs (``cc0-eval``, Ogg Vorbis) are not used for agreement: their stems
have no energy above ~16 kHz, the 512-tap Gram systems are numerically singular (condition
~1e17), and museval's own values move by up to 0.9 dB (SIR) between one and two BLAS threads on
them, so no implementation agrees with museval there to 0.01 dB.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from demixbench import STEMS
from demixbench.metrics import bss_eval_v4
from demixbench.metrics.bsseval import images, solve
from demixbench.separators.oracles import IRM1

SR = 44100
DEMO = Path(__file__).resolve().parents[2] / "shared" / "data" / "cc0-multitrack"


def music(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    import soundfile as sf

    songs = [{k: sf.read(DEMO / name / f"{k}.flac", dtype="float32", always_2d=True)[0]
              for k in STEMS} for name in ("2.Lithium", "6.Caesium")]
    n = int(seconds * SR)
    stems = {}
    for k in STEMS:
        parts, have, i = [], 0, 0
        while have < n:
            parts.append(songs[i % 2][k])
            have += len(parts[-1])
            i += 1
        stems[k] = np.concatenate(parts)[:n].T
    est = IRM1().separate(sum(stems.values()), SR, references=stems)
    keys = [k for k in STEMS if np.any(stems[k])]
    return np.stack([stems[k].T for k in keys]), np.stack([est[k].T for k in keys])


def forget() -> None:
    """Drop what the numpy backend keeps between calls (the next call is a first one)."""
    images._REFERENCES.clear()
    solve._FACTORED.clear()


def measure(seconds: float, rounds: int) -> dict:
    refs, ests = music(seconds)
    # another separator's estimates of the same references: a fifth of each stem's mixture
    # share moved to the other stems
    other = (0.8 * ests + 0.2 * ests.sum(axis=0, keepdims=True) / len(ests)).astype(ests.dtype)

    def timed(backend, estimates):
        t0 = time.perf_counter()
        values = np.stack(bss_eval_v4(refs, estimates, backend=backend))
        return time.perf_counter() - t0, values

    m_times, first_times, next_times = [], [], []
    for _ in range(rounds):
        tm, mus = timed("museval", ests)
        m_times.append(tm)
        for _ in range(2):
            forget()
            tn, ours = timed("numpy", ests)
            first_times.append(tn)
            tn, kept = timed("numpy", other)
            next_times.append(tn)
    forget()
    same = bool(np.array_equal(kept, np.stack(bss_eval_v4(refs, other)), equal_nan=True))
    with np.errstate(invalid="ignore"):
        gap = np.where(ours == mus, 0.0, np.abs(ours - mus))
    return {"seconds": seconds, "museval": float(np.median(m_times)),
            "first": float(np.median(first_times)), "next": float(np.median(next_times)),
            "gap": [float(np.nanmax(gap[i])) for i in range(4)], "bitwise": same}


def factorisations(seconds: float) -> dict:
    """Median one-thread times of the full and the stacked own-reference factorisations."""
    from threadpoolctl import threadpool_limits

    from demixbench.metrics.bsseval.correlations import correlations
    from demixbench.metrics.bsseval.levinson import BlockLevinson

    refs, ests = music(seconds)
    nsrc, _, nchan = refs.shape
    r = correlations(refs, ests)
    m = nsrc * nchan
    full = np.ascontiguousarray(r[:, :m].transpose(2, 0, 1))
    d = 1.0 / np.sqrt(np.diagonal(full[0]))
    full = full * d[:, None] * d[None, :]  # equilibrated, as the solver factorises it
    own = np.stack([full[:, c:c + nchan, c:c + nchan] for c in range(0, m, nchan)])
    out = {"M": m, "sources": nsrc}
    with threadpool_limits(1):
        for name, blocks in (("full", full[None]), ("own", own)):
            BlockLevinson(blocks)
            times = []
            for _ in range(7):
                t0 = time.perf_counter()
                BlockLevinson(blocks)
                times.append(time.perf_counter() - t0)
            out[name] = float(np.median(times))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lengths", default="10,15,30,60,300", help="seconds, comma-separated")
    p.add_argument("--rounds", type=int, default=2, help="museval runs per length")
    p.add_argument("--factorisation", action="store_true",
                   help="time only the block Levinson factorisations (one thread)")
    args = p.parse_args(argv)
    if args.factorisation:
        print("| length | M | full system | own systems (stacked) |")
        print("|---|---|---|---|")
        for seconds in (float(x) for x in args.lengths.split(",")):
            f = factorisations(seconds)
            print(f"| {seconds:g} s | {f['M']} | {1e3 * f['full']:.1f} ms | "
                  f"{1e3 * f['own']:.1f} ms |", flush=True)
        return 0
    warm = music(3.0)
    bss_eval_v4(*warm)
    bss_eval_v4(*warm, backend="museval")
    print("| length | museval | first estimate | ratio | next estimate | ratio | "
          "max frame diff SDR / ISR / SIR / SAR (dB) | next = fresh |")
    print("|---|---|---|---|---|---|---|---|")
    for seconds in (float(x) for x in args.lengths.split(",")):
        r = measure(seconds, args.rounds)
        gaps = " / ".join(f"{g:.1e}" for g in r["gap"])
        print(f"| {seconds:g} s | {r['museval']:.2f} s | {r['first']:.3f} s | "
              f"{r['museval'] / r['first']:.1f}x | {r['next']:.3f} s | "
              f"{r['museval'] / r['next']:.1f}x | {gaps} | {'yes' if r['bitwise'] else 'NO'} |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
