"""Reader for mir_eval's BSS Eval reference vectors (``refNN/``, ``estNN/``, ``outputNN.json``),
used to check the suite's BSS Eval against the original MATLAB toolbox's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def load_images_case(root: str | Path, case: str, block: str = "Images Framewise"):
    """Return ``(expected, references, estimates)`` for one case's images block.

    The multichannel signals are built as mir_eval builds them: each reference image has
    ``nchan`` copies of its mono source; an estimate image has the mono estimate as channel 0 and
    the estimate times ``gain`` in the others, those reversed when ``reverse`` is set. Arrays are
    ``(nsrc, nsamples, nchan)``; cases stored as multichannel files are read as they are.
    """
    import soundfile as sf

    root = Path(root)
    expected = json.loads((root / f"output{case}.json").read_text())[block]
    refs = [sf.read(p)[0] for p in sorted((root / f"ref{case}").glob("*.wav"))]
    ests = [sf.read(p)[0] for p in sorted((root / f"est{case}").glob("*.wav"))]
    if refs[0].ndim != 1:  # stored as multichannel images already
        return expected, np.stack(refs), np.stack(ests)
    nchan, gain = expected["nchan"], expected["gain"]
    references = np.stack([np.stack([x] * nchan, axis=1) for x in refs])
    images = []
    for x in ests:
        chans = [x] + [x * gain] * (nchan - 1)
        if expected["reverse"]:
            chans = [chans[0], *chans[1:][::-1]]
        images.append(np.stack(chans, axis=1))
    return expected, references, np.stack(images)
