"""MDX23C: the TFC-TDF U-Net (version 3) of KUIELab's MDX 2023 submission, in the form MSST's
``mdx23c`` checkpoints take, written here because no package on the index implements it.

What the network computes (Kim & Kim, "Sound Demixing Challenge 2023 – Music Demixing Track
technical report: TFC-TDF-UNet v3"; the state-dict layout is MSST's, which its checkpoints
dictate): the mixture's STFT (Hann window, centred) cut to its lowest ``dim_f`` bins, real and
imaginary parts as channels, the bins folded into ``num_subbands`` sub-bands stacked as further
channels; a 1x1 convolution; a U-Net over (time, frequency) whose blocks are TFC-TDF blocks —
two 3x3 convolution stages (norm, activation, convolution) with, between them, a residual
bottleneck of two linear maps across the frequency axis — with a 1x1 shortcut, strided 2-D
convolutions down and transposed ones up, skip connections concatenated; the decoder's output
multiplied by the first convolution's, concatenated with the sub-band input, two 1x1
convolutions to every target's channels, unfolded, zero-padded to the full spectrum and
inverted.

This file is checked, not trusted: ``tests/test_msst_models.py`` loads MSST's own reference
checkpoint strictly (``../shared/reference/msst-models/mdx23c``, random weights written by
MSST's code) and reproduces MSST's ``demix`` output. Only the configuration verified there
is built — instance norm and GELU, those of MSST's published MDX23C configs; another ``norm``
or ``act`` is refused rather than guessed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...errors import SeparatorError

VERIFIED = {"norm": "InstanceNorm", "act": "gelu"}


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True)


def _stage(in_channels: int, conv: nn.Module) -> nn.Sequential:
    """norm -> GELU -> ``conv`` (state-dict indices 0 and 2, as the checkpoints have them)."""
    return nn.Sequential(_norm(in_channels), nn.GELU(), conv)


class _Block(nn.Module):
    """One TFC-TDF block on ``(batch, channels, time, freq)``."""

    def __init__(self, in_channels: int, channels: int, bins: int, bottleneck: int):
        super().__init__()
        self.tfc1 = _stage(in_channels, nn.Conv2d(in_channels, channels, 3, 1, 1, bias=False))
        self.tdf = nn.Sequential(_norm(channels), nn.GELU(),
                                 nn.Linear(bins, bins // bottleneck, bias=False),
                                 _norm(channels), nn.GELU(),
                                 nn.Linear(bins // bottleneck, bins, bias=False))
        self.tfc2 = _stage(channels, nn.Conv2d(channels, channels, 3, 1, 1, bias=False))
        self.shortcut = nn.Conv2d(in_channels, channels, 1, 1, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.shortcut(x)
        x = self.tfc1(x)
        x = x + self.tdf(x)
        return self.tfc2(x) + skip


class _Blocks(nn.Module):
    def __init__(self, in_channels: int, channels: int, count: int, bins: int, bottleneck: int):
        super().__init__()
        self.blocks = nn.ModuleList(
            _Block(in_channels if i == 0 else channels, channels, bins, bottleneck)
            for i in range(count))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class _Resample(nn.Module):
    """Strided convolution down (``up=False``) or transposed convolution up, by ``scale``."""

    def __init__(self, in_channels: int, out_channels: int, scale: tuple[int, int], up: bool):
        super().__init__()
        kind = nn.ConvTranspose2d if up else nn.Conv2d
        self.conv = _stage(in_channels, kind(in_channels, out_channels, scale, scale, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class TFCTDFNet(nn.Module):
    """MDX23C from an MSST config (its ``audio``, ``model`` and ``training`` sections).

    Input ``(batch, channels, samples)`` with ``samples = hop_length * (dim_t - 1)``; output
    ``(batch, targets, channels, samples)``, or ``(batch, channels, samples)`` for one target.
    """

    def __init__(self, audio: dict[str, Any], model: dict[str, Any], targets: int):
        super().__init__()
        self.n_fft, self.hop = int(audio["n_fft"]), int(audio["hop_length"])
        self.dim_f, self.audio_channels = int(audio["dim_f"]), int(audio.get("num_channels", 2))
        self.subbands, self.targets = int(model["num_subbands"]), int(targets)
        scale = tuple(int(s) for s in model["scale"])
        depth, per_scale = int(model["num_scales"]), int(model["num_blocks_per_scale"])
        channels, growth = int(model["num_channels"]), int(model["growth"])
        bottleneck = int(model["bottleneck_factor"])
        self.register_buffer("window", torch.hann_window(self.n_fft, periodic=True),
                             persistent=False)
        stacked = self.subbands * self.audio_channels * 2  # sub-bands x channels x (re, im)
        bins = self.dim_f // self.subbands
        self.first_conv = nn.Conv2d(stacked, channels, 1, 1, 0, bias=False)
        self.encoder_blocks = nn.ModuleList()
        for _ in range(depth):
            level = nn.Module()
            level.tfc_tdf = _Blocks(channels, channels, per_scale, bins, bottleneck)
            level.downscale = _Resample(channels, channels + growth, scale, up=False)
            self.encoder_blocks.append(level)
            bins //= scale[1]
            channels += growth
        self.bottleneck_block = _Blocks(channels, channels, per_scale, bins, bottleneck)
        self.decoder_blocks = nn.ModuleList()
        for _ in range(depth):
            level = nn.Module()
            level.upscale = _Resample(channels, channels - growth, scale, up=True)
            bins *= scale[1]
            channels -= growth
            level.tfc_tdf = _Blocks(2 * channels, channels, per_scale, bins, bottleneck)
            self.decoder_blocks.append(level)
        self.final_conv = nn.Sequential(
            nn.Conv2d(channels + stacked, channels, 1, 1, 0, bias=False), nn.GELU(),
            nn.Conv2d(channels, self.targets * stacked, 1, 1, 0, bias=False))

    # -- spectra ---------------------------------------------------------------------------
    def _spectrum(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` -> ``(B, C * 2, dim_f, frames)``: each channel's re and im."""
        b, c, t = x.shape
        spec = torch.stft(x.reshape(b * c, t), self.n_fft, self.hop, window=self.window,
                          center=True, return_complex=True)
        spec = torch.view_as_real(spec).permute(0, 3, 1, 2)  # (B C, 2, F, frames)
        return spec.reshape(b, c * 2, *spec.shape[-2:])[:, :, :self.dim_f]

    def _signal(self, spec: torch.Tensor) -> torch.Tensor:
        """``(B, S, C * 2, dim_f, frames)`` -> ``(B, S, C, T)``, the bins above dim_f zero."""
        b, s, c2, f, frames = spec.shape
        full = self.n_fft // 2 + 1
        spec = torch.cat([spec, spec.new_zeros(b, s, c2, full - f, frames)], dim=3)
        spec = spec.reshape(b * s * c2 // 2, 2, full, frames).permute(0, 2, 3, 1)
        wave = torch.istft(torch.complex(spec[..., 0], spec[..., 1]), self.n_fft, self.hop,
                           window=self.window, center=True)
        return wave.reshape(b, s, c2 // 2, -1)

    def _fold(self, x: torch.Tensor) -> torch.Tensor:  # bins into sub-band channels
        b, c, f, t = x.shape
        return x.reshape(b, c * self.subbands, f // self.subbands, t)

    def _unfold(self, x: torch.Tensor) -> torch.Tensor:
        b, c, f, t = x.shape
        return x.reshape(b, c // self.subbands, f * self.subbands, t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mix = self._fold(self._spectrum(x))  # (B, stacked, bins, frames)
        first = self.first_conv(mix)
        h = first.transpose(-1, -2)  # (B, channels, frames, bins): TDF maps act on bins
        skips = []
        for level in self.encoder_blocks:
            h = level.tfc_tdf(h)
            skips.append(h)
            h = level.downscale(h)
        h = self.bottleneck_block(h)
        for level in self.decoder_blocks:
            h = level.upscale(h)
            h = level.tfc_tdf(torch.cat([h, skips.pop()], dim=1))
        h = h.transpose(-1, -2) * first
        out = self._unfold(self.final_conv(torch.cat([mix, h], dim=1)))
        b, c, f, t = out.shape
        wave = self._signal(out.reshape(b, self.targets, c // self.targets, f, t))
        return wave if self.targets > 1 else wave[:, 0]


def build_mdx23c(config: dict) -> TFCTDFNet:
    from .config import section

    model, audio, training = (section(config, k) for k in ("model", "audio", "training"))
    odd = [f"{k}={model.get(k)!r} (verified: {v!r})" for k, v in VERIFIED.items()
           if model.get(k, v) != v]
    if odd:
        raise SeparatorError(f"mdx23c: only the configuration checked against MSST's output is "
                             f"built here: {'; '.join(odd)}")
    targets = 1 if training.get("target_instrument") else len(training["instruments"])
    try:
        return TFCTDFNet(audio, model, targets)
    except (KeyError, TypeError, ValueError) as exc:
        raise SeparatorError(f"mdx23c: the config's audio/model sections do not build the "
                             f"network ({exc!r})") from None
