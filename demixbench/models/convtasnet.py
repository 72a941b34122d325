"""Conv-TasNet (Luo & Mesgarani, IEEE/ACM TASLP 2019), written for this project, in the music
configuration of the Demucs v2 paper (Défossez et al. 2019, "Music Source Separation in the
Waveform Domain"): stereo at 44.1 kHz, four sources.

Architecture (symbols of the Conv-TasNet paper):

- encoder: a 1-D convolution of ``N`` filters of ``L`` samples, stride ``L/2``, no bias, ReLU,
  over the ``audio_channels`` input channels;
- separator (temporal convolutional network): global layer norm (gLN), a 1x1 bottleneck to
  ``B`` channels, then ``R`` repeats of ``X`` blocks with dilations ``1, 2, ..., 2^(X-1)``.
  Each block: 1x1 conv ``B -> H``, PReLU, gLN, depthwise conv (kernel ``P``, that dilation,
  "same" padding), PReLU, gLN, 1x1 conv ``H -> B``, added to its input (residual). A final
  1x1 conv ``B -> C*N`` and ReLU give one mask per source (the Demucs v2 setting; the paper's
  speech models use a sigmoid);
- decoder: each masked representation through a linear map ``N -> audio_channels*L`` and
  overlap-add with hop ``L/2``;
- ``mixture_skip`` (off in the paper's configuration): every source's output is the decoder's
  plus ``mixture / C``, so an untrained model starts from an equal share of the mixture instead
  of noise uncorrelated with every stem. Trained from scratch on a few CPU-minutes, the plain
  model stayed there (validation SI-SDR −32 dB after 75 steps); with the skip it starts at the
  share's −8 dB and learns a correction to it.

Music configuration (Demucs v2): ``N=256, L=20, B=256, H=512, P=3, X=10, R=4, C=4``, stereo,
gLN, non-causal: 8,185 encoder frames, i.e. 81,870 samples (1.86 s) of receptive field
(:meth:`TasNetConfig.receptive_field`).

Checkpoints: the one format of :mod:`demixbench.models.checkpoint` (what ``demixbench train
convtasnet`` and :func:`save_checkpoint` write), read with ``torch.load(weights_only=True)``.
No published music checkpoint exists for this exact module: the separator
(:mod:`demixbench.separators.convtasnet`) loads ``--weights`` or, when the package ships one,
the small configuration trained by this project.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import STEMS
from ..errors import SeparatorError


@dataclass(frozen=True)
class TasNetConfig:
    N: int = 256
    L: int = 20
    B: int = 256
    H: int = 512
    P: int = 3
    X: int = 10
    R: int = 4
    sources: tuple[str, ...] = STEMS
    audio_channels: int = 2
    samplerate: int = 44100
    mixture_skip: bool = False  # add mixture / sources to every output (see the module doc)

    def receptive_field(self) -> int:
        """Input samples that reach one output sample through the convolutions.

        The TCN spans ``F = 1 + R * sum_x (P - 1) 2^x`` encoder frames; an output sample lies
        in two overlapping decoder frames (hop ``L/2``), so ``F + 1`` frames, i.e.
        ``F * L/2 + L`` samples. (gLN normalises over the whole input, so its statistics, not
        its convolutions, make every output depend slightly on every input.)"""
        frames = 1 + self.R * sum((self.P - 1) * 2 ** x for x in range(self.X))
        return frames * (self.L // 2) + self.L

    def parameter_count(self) -> int:
        """Parameters implied by the configuration (closed form, checked against the module)."""
        N, L, B, H, P, X, R, C, A = (self.N, self.L, self.B, self.H, self.P, self.X, self.R,
                                     len(self.sources), self.audio_channels)
        encoder = A * N * L
        head = 2 * N + N * B  # gLN (gain, bias) and the bottleneck, no bias
        block = B * H + 1 + 2 * H + H * P + 1 + 2 * H + H * B  # 1x1, PReLU, gLN, depthwise, PReLU, gLN, 1x1
        masks = B * C * N
        decoder = N * A * L
        return encoder + head + R * X * block + masks + decoder


def _torch():
    try:
        import torch
        from torch import nn
    except ImportError as exc:
        raise SeparatorError(f"Conv-TasNet needs torch ({exc})") from None
    return torch, nn


def build_model(config: TasNetConfig):
    """The ``torch.nn.Module`` for ``config`` (built lazily so torch stays optional)."""
    torch, nn = _torch()

    class GlobalLayerNorm(nn.Module):
        """gLN: normalise over channels and time, per example; learned per-channel gain/bias."""

        def __init__(self, channels: int):
            super().__init__()
            self.gamma = nn.Parameter(torch.ones(1, channels, 1))
            self.beta = nn.Parameter(torch.zeros(1, channels, 1))

        def forward(self, x):
            mean = x.mean(dim=(1, 2), keepdim=True)
            var = ((x - mean) ** 2).mean(dim=(1, 2), keepdim=True)
            return self.gamma * (x - mean) / torch.sqrt(var + 1e-8) + self.beta

    class Block(nn.Module):
        def __init__(self, B, H, P, dilation):
            super().__init__()
            self.net = nn.Sequential(
                nn.Conv1d(B, H, 1, bias=False), nn.PReLU(), GlobalLayerNorm(H),
                nn.Conv1d(H, H, P, dilation=dilation, padding=(P - 1) * dilation // 2, groups=H,
                          bias=False),
                nn.PReLU(), GlobalLayerNorm(H), nn.Conv1d(H, B, 1, bias=False))

        def forward(self, x):
            return x + self.net(x)

    class ConvTasNet(nn.Module):
        def __init__(self, cfg: TasNetConfig):
            super().__init__()
            self.config = cfg
            self.sources = list(cfg.sources)
            self.samplerate = cfg.samplerate
            self.audio_channels = cfg.audio_channels
            C = len(cfg.sources)
            self.encoder = nn.Conv1d(cfg.audio_channels, cfg.N, cfg.L, stride=cfg.L // 2, bias=False)
            blocks = [Block(cfg.B, cfg.H, cfg.P, 2 ** x) for _ in range(cfg.R) for x in range(cfg.X)]
            self.separator = nn.Sequential(GlobalLayerNorm(cfg.N), nn.Conv1d(cfg.N, cfg.B, 1, bias=False),
                                           *blocks, nn.Conv1d(cfg.B, C * cfg.N, 1, bias=False))
            self.decoder = nn.Linear(cfg.N, cfg.audio_channels * cfg.L, bias=False)

        def valid_length(self, length: int) -> int:
            """Smallest length >= ``length`` that the encoder frames without a remainder."""
            hop = self.config.L // 2
            frames = max(1, -(-(length - self.config.L) // hop)) + 1
            return (frames - 1) * hop + self.config.L

        def forward(self, mix):
            """``(batch, audio_channels, samples)`` -> ``(batch, sources, audio_channels, samples)``."""
            cfg = self.config
            n = mix.shape[-1]
            x = torch.nn.functional.pad(mix, (0, self.valid_length(n) - n))
            w = torch.relu(self.encoder(x))  # (batch, N, frames)
            masks = torch.relu(self.separator(w)).view(x.shape[0], len(self.sources), cfg.N, -1)
            frames = (masks * w[:, None]).transpose(2, 3)  # (batch, C, frames, N)
            seg = self.decoder(frames).view(*frames.shape[:3], cfg.audio_channels, cfg.L)
            seg = seg.permute(0, 1, 3, 4, 2)  # (batch, C, A, L, frames)
            b, c, a = seg.shape[:3]
            out = torch.nn.functional.fold(seg.reshape(b * c, a * cfg.L, -1),
                                           output_size=(1, x.shape[-1]), kernel_size=(1, cfg.L),
                                           stride=(1, cfg.L // 2))
            out = out.view(b, c, a, -1)[..., :n]
            if cfg.mixture_skip:
                out = out + mix[:, None] / c
            return out

    return ConvTasNet(config)


def save_checkpoint(model, path: str | Path) -> Path:
    """Write ``model`` in the one checkpoint format of :mod:`demixbench.models.checkpoint`
    (the format ``demixbench train`` writes), which the separator reads."""
    from .checkpoint import save_model

    return save_model(model, "convtasnet", path)


def load_checkpoint(path: str | Path):
    """The model in ``path`` (eval mode, float32), read by the one checkpoint loader."""
    from .checkpoint import load_model

    return load_model(path, "convtasnet")[0]
