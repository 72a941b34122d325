"""The training loss of the seed report's simplified Demucs (003, section 7), used for every
model here: ``0.85 x L1`` on the waveforms plus ``0.15 x`` a multi-resolution STFT loss (FFT
sizes 512, 1024, 2048, hop a quarter; spectral convergence plus L1 of log magnitudes), each
source's term weighted (drums and bass 1.2, the others 1). Spectral convergence takes its norms
over the whole batch (Yamamoto et al.'s definition); examples whose reference is silent count
in the L1 term only (see :func:`separation_loss`). Measured on batches of the CC0 training
songs, the per-example variants scored silent output better than any share of the mixture."""

from __future__ import annotations

L1_WEIGHT, STFT_WEIGHT = 0.85, 0.15
STFT_SIZES = (512, 1024, 2048)
SOURCE_WEIGHTS = {"drums": 1.2, "bass": 1.2}
LOG_FLOOR = 1e-4  # added to magnitudes before the log: differences below it do not count


LOSSES = ("seed", "l1")


def separation_loss(estimates, references, sources, kind: str = "seed"):
    """``estimates``, ``references``: ``(batch, sources, channels, samples)``; a scalar tensor.
    ``kind="l1"``: the waveform L1 term alone (Demucs' own training loss), with the same source
    weights."""
    import torch

    weights = torch.tensor([SOURCE_WEIGHTS.get(s, 1.0) for s in sources],
                           dtype=estimates.dtype, device=estimates.device)
    weights = weights / weights.sum()
    l1 = (estimates - references).abs().mean(dim=(0, 2, 3))
    if kind == "l1":
        return (l1 * weights).sum()
    b, s, c, n = estimates.shape
    est = estimates.reshape(b * s * c, n)
    ref = references.reshape(b * s * c, n)
    spectral = torch.zeros(s, dtype=estimates.dtype, device=estimates.device)
    for size in STFT_SIZES:
        window = torch.hann_window(size, device=estimates.device, dtype=estimates.dtype)
        e = torch.stft(est, size, size // 4, window=window, return_complex=True).abs()
        r = torch.stft(ref, size, size // 4, window=window, return_complex=True).abs()
        e, r = e.view(b, s, c, *e.shape[-2:]), r.view(b, s, c, *r.shape[-2:])
        # spectral convergence as Yamamoto et al. define it: Frobenius norms over the whole
        # batch (per source), so a quiet segment does not blow the ratio up; the log-magnitude
        # term leaves out examples whose reference is silent (the bass of a song without one):
        # there it measures leakage in log units against the floor, which dwarfs every other
        # error and makes silence the best answer; L1 still trains them
        energy = r.pow(2).sum(dim=(2, 3, 4))  # (batch, sources)
        # "silent": 60 dB below the loudest source of the example (decoded lossy silence and
        # near-silent stretches are not exactly zero)
        active = (energy > 1e-6 * energy.max(dim=1, keepdim=True).values).to(e.dtype)
        norm = (energy * active).sum(dim=0).sqrt()  # (sources,) over the active examples
        # (clamped: the square root of an exact 0 has an infinite gradient)
        miss = ((r - e).pow(2).sum(dim=(2, 3, 4)) * active).sum(dim=0).clamp_min(1e-20).sqrt()
        convergence = miss / norm.clamp_min(1e-12) * (norm > 0).to(e.dtype)
        log_diff = (torch.log(e + LOG_FLOOR) - torch.log(r + LOG_FLOOR)).abs().mean(dim=(2, 3, 4))
        log_mag = (log_diff * active).sum(dim=0) / active.sum(dim=0).clamp_min(1.0)
        spectral = spectral + (convergence + log_mag) / len(STFT_SIZES)
    return ((L1_WEIGHT * l1 + STFT_WEIGHT * spectral) * weights).sum()
