"""BSS Eval v4: agreement with museval, speed ratio and peak memory of demixbench's backend.

    python benchmarks/bsseval_agreement.py [--shared ../shared]
                                           [--only agreement|noise|speed|memory]

Prints, for each data set, the largest absolute difference per metric between
``bss_eval_v4(backend="numpy")`` and museval on every frame, and the frame count compared;
then both implementations' times on one 30 s 4-stem stereo excerpt, measured side by side in
this process (three rounds of one museval run and three numpy runs); then the peak RSS of a
fresh process evaluating a 10-minute 4-stem stereo track.

``--only noise`` scores estimates that are uniform noise in [0, 1] (a large DC offset, as
museval's own regression tests use) against synthetic and real references, and prints beside
our distance to museval the distance between two museval runs that differ only in the BLAS
thread count. Where the references are band-limited (a real bass stem) the Gram system's
condition number reaches ~1e17: the filters' components along near-null directions are
rounding noise, and museval's own values move by tenths of a dB with the thread count.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from demixbench import STEMS
from demixbench.datasets import demo_dataset
from demixbench.datasets.synthetic import synthesize_track
from demixbench.metrics import bss_eval_v4
from demixbench.metrics.bsseval import images, solve
from demixbench.separators.oracles import IRM1

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from mir_eval_vectors import load_images_case  # noqa: E402  (a test helper: tests/ holds the vectors)

SR = 44100
NAMES = ("sdr", "isr", "sir", "sar")


def irm1_case(stems: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    keys = [k for k in STEMS if np.any(stems[k])]  # a silent stem is left out (museval raises)
    est = IRM1().separate(sum(stems.values()), SR, references=stems)
    return np.stack([stems[k].T for k in keys]), np.stack([est[k].T for k in keys])


def compare(label: str, refs: np.ndarray, ests: np.ndarray, win: int = SR, hop: int = SR) -> None:
    ours = np.stack(bss_eval_v4(refs, ests, win, hop, backend="numpy"))
    ref = np.stack(bss_eval_v4(refs, ests, win, hop, backend="museval"))
    same_nan = np.array_equal(np.isnan(ours), np.isnan(ref))
    with np.errstate(invalid="ignore"):  # inf - inf where both give +inf (a single source's SIR)
        gap = np.where(ours == ref, 0.0, np.abs(ours - ref))
    diffs = [float(np.nanmax(gap[i])) if np.any(~np.isnan(gap[i])) else 0.0 for i in range(4)]
    print(f"{label:<34} frames {ref.shape[-1]:>4} x {ref.shape[1]} sources   "
          + "  ".join(f"{n} {d:.1e}" for n, d in zip(NAMES, diffs))
          + f"   NaN pattern {'equal' if same_nan else 'DIFFERENT'}", flush=True)


def agreement(shared: Path) -> None:
    print("== agreement with museval (largest |difference| in dB over every frame) ==")
    for seed in range(3):
        compare(f"synthetic seed={seed} (10 s, irm1)", *irm1_case(synthesize_track(seed, 10.0)))
    for track in demo_dataset():
        stems, _ = track.load()
        compare(f"CC0 {track.name} (15 s, irm1)", *irm1_case(stems))
    root = Path(__file__).resolve().parents[1] / "tests" / "data" / "mir_eval-separation"
    if not root.is_dir():
        print(f"(no metric vectors under {root})")
        return
    for case in ("01", "02", "03", "06", "07", "09"):
        block, refs, ests = load_images_case(root, case)
        compare(f"mir_eval vectors {case} (v4, win {block['win']})", refs, ests,
                block["win"], block["hop"])
    print("mir_eval vectors 01, 02, 07, 09 copy a mono signal to every channel: their Gram "
          "systems are exactly singular and the numpy backend hands them to museval's solver "
          "(hence 0 dB); 03 (mono) and 06 (stereo files) are computed by the numpy backend. "
          "08 (four identical channels) is not run: museval's least-squares solves take minutes.")


def speed(rounds: int = 3) -> None:
    print("\n== speed: one 30 s 4-stem stereo excerpt (synthetic seed=5, irm1 estimates) ==")
    refs, ests = irm1_case(synthesize_track(5, 30.0))
    bss_eval_v4(refs[:, : 2 * SR], ests[:, : 2 * SR])  # warm-up: imports, FFT plans
    bss_eval_v4(refs[:, : 2 * SR], ests[:, : 2 * SR], backend="museval")

    def timed(backend):
        images._REFERENCES.clear()  # each call a first one: nothing kept from the last
        solve._FACTORED.clear()
        t0 = time.perf_counter()
        bss_eval_v4(refs, ests, backend=backend)
        return time.perf_counter() - t0

    # interleaved: each museval run is paired with the numpy runs made right after it, so that
    # both see the same state of the machine (this VM's speed drifts by +-15 % over minutes)
    ratios, m_all, n_all = [], [], []
    for _ in range(rounds):
        m = timed("museval")
        n = [timed("numpy") for _ in range(3)]
        m_all.append(m)
        n_all += n
        ratios.append(m / float(np.median(n)))
        print(f"museval {m:6.2f} s   numpy {', '.join(f'{t:.2f}' for t in n)} s   "
              f"ratio {ratios[-1]:.1f}x", flush=True)
    print(f"medians: museval {np.median(m_all):.2f} s, numpy {np.median(n_all):.2f} s; "
          f"ratio museval / numpy: {np.median(ratios):.1f}x (median of the {rounds} rounds)")


# VmHWM (this process's own high-water mark) rather than ru_maxrss, which Linux carries over
# from the parent across fork/exec.
_CHILD = """
import re, sys, time, numpy as np
from demixbench.metrics import bss_eval_v4
from demixbench.metrics.bsseval import images, solve
refs = np.load(sys.argv[1], mmap_mode="r"); ests = np.load(sys.argv[2], mmap_mode="r")
t0 = time.perf_counter(); sdr, *_ = bss_eval_v4(refs, ests); t = time.perf_counter() - t0
hwm = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) / 1024
inputs = (refs.nbytes + ests.nbytes) / 2**20
print(f"{sdr.shape[1]} frames in {t:.1f} s, peak RSS {hwm:.0f} MB "
      f"(of which the two mmapped float32 inputs: {inputs:.0f} MB)")
"""


def memory(minutes: float = 10.0) -> None:
    print(f"\n== memory: a {minutes:g}-minute 4-stem stereo track (float32 on disk, mmapped) ==")
    base = synthesize_track(9, 30.0)
    reps = int(np.ceil(minutes * 60 / 30))
    rng = np.random.default_rng(0)
    n = int(minutes * 60 * SR)
    with tempfile.TemporaryDirectory() as tmp:
        refs = np.stack([np.tile(base[k], reps)[:, :n].T for k in STEMS]).astype(np.float32)
        refs += 1e-3 * rng.standard_normal(refs.shape).astype(np.float32)  # not periodic
        # estimates with leakage and their own artifacts (exact mixtures of the references
        # would put SAR at the level of rounding, ~250 dB, where every frame is recomputed)
        ests = (0.9 * refs + 0.05 * np.roll(refs, 1, axis=0)
                + 3e-3 * rng.standard_normal(refs.shape)).astype(np.float32)
        np.save(f"{tmp}/refs.npy", refs)
        np.save(f"{tmp}/ests.npy", ests)
        del refs, ests
        out = subprocess.run([sys.executable, "-c", _CHILD, f"{tmp}/refs.npy", f"{tmp}/ests.npy"],
                             capture_output=True, text=True, check=True)
        print(out.stdout.strip())


def noise() -> None:
    from demixbench.datasets import open_folder

    print("== uniform [0, 1] noise as estimates, and ideal-ratio-mask estimates of a band-limited real "
          "window (largest |difference| in dB over every frame) ==")
    cases = [(f"synthetic seed={seed} (8 s)", synthesize_track(seed, 8.0)) for seed in (0, 1)]
    folder = Path(__file__).resolve().parents[2] / "shared" / "data" / "cc0-eval"
    if folder.is_dir():
        stems, _ = open_folder(folder).tracks[0].load()
        cases.append(("CC0 2.Lithium 190-220 s", {k: v[:, 190 * SR:220 * SR]
                                                  for k, v in stems.items()}))
    for label, stems in cases:
        refs = np.stack([stems[k].T for k in STEMS]).astype(np.float64)
        ests = np.random.default_rng(0).uniform(0, 1, refs.shape)
        if label.startswith("CC0"):  # the same window with the ideal ratio mask's estimates
            _, irm = irm1_case(stems)
            _compare_threads(label + " irm1", refs, irm.astype(np.float64))
        _compare_threads(label, refs, ests)


def _compare_threads(label: str, refs: np.ndarray, ests: np.ndarray) -> None:
    from threadpoolctl import threadpool_limits

    ours = np.stack(bss_eval_v4(refs, ests, backend="numpy"))
    runs = []
    for threads in (1, 2):
        with threadpool_limits(threads):
            runs.append(np.stack(bss_eval_v4(refs, ests, backend="museval")))
    gap = [float(np.nanmax(np.abs(ours[i] - runs[0][i]))) for i in range(4)]
    self_gap = [float(np.nanmax(np.abs(runs[1][i] - runs[0][i]))) for i in range(4)]
    print(f"{label:<31} ours vs museval: " + "  ".join(f"{n} {d:.1e}" for n, d in zip(NAMES, gap))
          + "   museval 1 vs 2 BLAS threads: "
          + "  ".join(f"{n} {d:.1e}" for n, d in zip(NAMES, self_gap)), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    p.add_argument("--only", choices=("agreement", "noise", "speed", "memory"))
    args = p.parse_args()
    if args.only in (None, "agreement"):
        agreement(args.shared)
    if args.only in (None, "noise"):
        noise()
    if args.only in (None, "speed"):
        speed()
    if args.only in (None, "memory"):
        memory()


if __name__ == "__main__":
    main()
