"""MSST's chunked inference, reproduced from its description (``../shared/reference/
msst-models/README.md``) and checked against its outputs, quirks included — results computed
here must be the numbers MSST users get from the same checkpoint.

Generic mode (every model but htdemucs): chunks of ``chunk_size`` every ``chunk //
num_overlap`` samples, the whole mix reflect-padded by ``chunk - step`` when it is long
enough, each chunk weighted by a window with linear fades of ``chunk // 10`` samples, chunks
run ``inference.batch_size`` at a time. MSST decides once per *batch* whether its chunks are
the first or the last (from the position after the batch's last chunk), so with a batch of
several chunks the first chunk keeps its fade-in (sample 0 becomes 0/0, set to 0) and every
chunk of the final batch loses its fade-out. Demucs mode (htdemucs): zero-padded chunks of
``segment`` seconds, plainly averaged.
"""

from __future__ import annotations

import warnings

import numpy as np

from ...errors import SeparatorError
from .config import section


def chunking(config: dict, demucs_mode: bool) -> tuple[int, int, int]:
    """``(chunk, step, batch_size)`` in samples as MSST derives them from the config."""
    inference, audio, training = (section(config, k) for k in ("inference", "audio", "training"))
    if demucs_mode:
        chunk = int(training["samplerate"] * training["segment"])
    else:
        chunk = int(inference.get("chunk_size") or audio.get("chunk_size") or 0)
    overlap = int(inference.get("num_overlap", 4))
    batch = int(inference.get("batch_size", 1))
    if chunk <= 0 or overlap < 1 or batch < 1:
        raise SeparatorError(f"MSST config: chunk_size {chunk}, num_overlap {overlap} and "
                             f"batch_size {batch} must be positive")
    return chunk, max(chunk // overlap, 1), batch


def demix(model, config: dict, mix: np.ndarray, device: str = "cpu",
          demucs_mode: bool = False, n_stems: int | None = None) -> np.ndarray:
    """The model's estimates of ``mix`` ``(channels, samples)`` as MSST's ``demix`` computes
    them: ``(stems, channels, samples)`` float32."""
    import torch

    chunk, step, batch_size = chunking(config, demucs_mode)
    x = torch.from_numpy(np.ascontiguousarray(mix, dtype=np.float32))
    length = x.shape[-1]
    border = 0 if demucs_mode else chunk - step
    padded = border > 0 and length > 2 * border
    if padded:
        x = torch.nn.functional.pad(x[None], (border, border), mode="reflect")[0]
    fade = chunk // 10
    window = torch.ones(chunk)
    if not demucs_mode and fade > 0:
        window[:fade] = torch.linspace(0, 1, fade)
        window[-fade:] = torch.linspace(1, 0, fade)
    total = x.shape[-1]
    result = counter = None
    batch, starts = [], []
    i = 0
    with torch.inference_mode(), warnings.catch_warnings():
        # bs-roformer 0.3.10 selects attention kernels with a context manager torch deprecated
        warnings.filterwarnings("ignore", message=".*sdp_kernel", category=FutureWarning)
        while i < total:
            part = x[:, i:i + chunk]
            n = part.shape[-1]
            if n < chunk:
                reflect = not demucs_mode and n > chunk // 2
                part = torch.nn.functional.pad(part[None], (0, chunk - n),
                                               mode="reflect" if reflect else "constant")[0]
            batch.append(part)
            starts.append((i, n))
            i += step
            if len(batch) < batch_size and i < total:
                continue
            out = model(torch.stack(batch).to(device)).float().cpu()
            out = out.reshape(len(batch), -1, *out.shape[-2:])  # (batch, stems, ch, time)
            if result is None:
                result = torch.zeros(out.shape[1], out.shape[2], total)
                counter = torch.zeros_like(result)
            w = window.clone()
            if not demucs_mode:  # MSST's once-per-batch first/last decision
                if i - step == 0:
                    w[:fade] = 1
                elif i >= total:
                    w[-fade:] = 1
            for j, (start, n) in enumerate(starts):
                result[..., start:start + n] += out[j, ..., :n] * w[:n]
                counter[..., start:start + n] += w[:n]
            batch, starts = [], []
    est = torch.nan_to_num(result / counter, nan=0.0)
    if padded:
        est = est[..., border:-border]
    est = est.numpy().astype(np.float32)
    if n_stems is not None and est.shape[0] != n_stems:
        raise SeparatorError(f"the MSST model returned {est.shape[0]} stems but its config "
                             f"names {n_stems}")
    return est
