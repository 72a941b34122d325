"""Check that torchaudio's HDemucs (HDEMUCS_HIGH_MUSDB_PLUS's architecture) and demucs's
HDemucs are the same network under demixbench's key mapping.

torchaudio cannot be installed beside the CPU torch here, but its model file only needs torch:
give this script that file (``torchaudio/models/_hdemucs.py`` from any torchaudio wheel, e.g.
``pip download --no-deps torchaudio`` and unzip it) or run it where torchaudio imports.
It builds torchaudio's ``hdemucs_high`` with random weights (perturbed away from their
initialisation), maps its state dict with
:func:`demixbench.separators.demucs.torchaudio_hdemucs_state`, loads it strictly into demucs's
``HDemucs(nfft=4096, depth=6)`` and compares the two outputs.

    python benchmarks/hdemucs_torchaudio_equivalence.py --torchaudio-src torchaudio/models/_hdemucs.py
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def torchaudio_module(src: str | None):
    if src is None:
        from torchaudio.models import _hdemucs

        return _hdemucs
    spec = importlib.util.spec_from_file_location("torchaudio_hdemucs", src)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--torchaudio-src", help="path to torchaudio/models/_hdemucs.py")
    args = p.parse_args()

    import torch
    from demucs.hdemucs import HDemucs

    from demixbench import STEMS
    from demixbench.separators.demucs import torchaudio_hdemucs_state

    ta = torchaudio_module(args.torchaudio_src)
    torch.manual_seed(0)
    theirs = ta.hdemucs_high(list(STEMS)).eval()
    with torch.no_grad():
        for prm in theirs.parameters():
            prm.add_(0.05 * torch.randn_like(prm))
    ours = HDemucs(list(STEMS), nfft=4096, depth=6).eval()
    state = theirs.state_dict()
    mapped = torchaudio_hdemucs_state(state, ours)
    dropped = sorted(set(state) - {k for k in state if any(
        torchaudio_hdemucs_state({k: state[k]}, ours))})
    ours.load_state_dict(mapped, strict=True)
    print(f"torchaudio state dict: {len(state)} tensors, "
          f"{sum(v.numel() for v in state.values()):,} values; loaded strictly into demucs HDemucs")
    print(f"dropped (unused in torchaudio's forward): {', '.join(dropped) or 'none'}")
    worst = 0.0
    for seconds in (3.0, 7.0028):
        x = torch.randn(1, 2, int(seconds * 44100))
        with torch.no_grad():
            diff = (theirs(x) - ours(x)).abs().max().item()
        worst = max(worst, diff)
        print(f"{seconds:g} s random input: max |torchaudio - demucs| = {diff:.3g}")
    print("equivalent" if worst < 1e-5 else "NOT equivalent")
    return 0 if worst < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
