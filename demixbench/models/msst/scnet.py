"""SCNet (Tong et al., "SCNet: Sparse Compression Network for Music Source Separation", ICASSP
2024) in the form MSST's ``scnet`` checkpoints take, written here because no package on the
index implements it.

What the network computes (the state-dict layout is MSST's, which its checkpoints dictate):
the mixture's STFT (no window, i.e. rectangular; ``normalized``; centred) after padding the
signal so that the frame count is even, real and imaginary parts of every channel as
channels. The encoder's sparse down-sampling blocks split the frequency axis into a low, mid
and high band (fractions ``band_SR``), convolve each band with its own kernel and stride along
frequency (``band_kernel``, ``band_stride``: coarser for higher bands), run each band's frames
through a stack of residual 1-D convolution modules along time (GroupNorm, convolution, GLU,
depthwise convolution, GroupNorm, Swish, pointwise convolution), and join the bands for a
3x3 convolution; the band outputs are the skips. The separation network alternates
dual-path layers (a bidirectional LSTM across frequency, then across time, each residual
behind a GroupNorm and a linear map) with a real FFT along time (orthonormal; real and
imaginary parts as channels) and its inverse. The decoder fuses each skip (added, the
channels repeated, a 3x3 convolution, GLU) and up-samples each band by a transposed
convolution, trimmed symmetrically to the band's length; the last one gives every source's
spectrogram, inverted and cut back to the input's length.

This file is checked, not trusted: ``tests/test_msst_models.py`` loads MSST's own reference
checkpoint strictly (``../shared/reference/msst-models/scnet``, random weights written by
MSST's code) and reproduces MSST's ``demix`` output, and with ``inference.normalize`` that of
MSST's ``inference.py``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import SeparatorError

BANDS = ("low", "mid", "high")


class _Swish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class _ConvModule(nn.Module):
    """Residual 1-D convolution layers along time on ``(batch, channels, frames)``."""

    def __init__(self, channels: int, depth: int, compress: float, kernel: int):
        super().__init__()
        hidden = int(channels / compress)
        pad = kernel // 2
        self.layers = nn.ModuleList(nn.Sequential(
            nn.GroupNorm(1, channels),
            nn.Conv1d(channels, 2 * hidden, kernel, padding=pad),
            nn.GLU(1),
            nn.Conv1d(hidden, hidden, kernel, padding=pad, groups=hidden),
            nn.GroupNorm(1, hidden),
            _Swish(),
            nn.Conv1d(hidden, channels, 1),
        ) for _ in range(abs(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = x + layer(x)
        return x


class _SplitBands(nn.Module):
    """The sparse down-sampling layer: one strided convolution per frequency band."""

    def __init__(self, in_channels: int, out_channels: int, bands: list[dict[str, Any]]):
        super().__init__()
        self.bands = bands
        self.convs = nn.ModuleList(
            nn.Conv2d(in_channels, out_channels, (b["kernel"], 1), (b["stride"], 1))
            for b in bands)

    def edges(self, bins: int) -> list[tuple[int, int]]:
        low, mid = self.bands[0]["SR"], self.bands[1]["SR"]
        a, b = math.ceil(bins * low), math.ceil(bins * (low + mid))
        return [(0, a), (a, b), (b, bins)]

    def forward(self, x: torch.Tensor):
        outputs, lengths = [], []
        for conv, band, (lo, hi) in zip(self.convs, self.bands, self.edges(x.shape[2])):
            part = x[:, :, lo:hi]
            stride, kernel = band["stride"], band["kernel"]
            pad = kernel - stride if stride == 1 else (stride - part.shape[2] % stride) % stride
            outputs.append(conv(F.pad(part, (0, 0, pad // 2, pad - pad // 2))))
            lengths.append(hi - lo)
        return outputs, lengths


class _DownBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, bands: list[dict[str, Any]],
                 depths: list[int], compress: float, kernel: int):
        super().__init__()
        self.SDlayer = _SplitBands(in_channels, out_channels, bands)
        self.conv_modules = nn.ModuleList(_ConvModule(out_channels, d, compress, kernel)
                                          for d in depths)
        self.globalconv = nn.Conv2d(out_channels, out_channels, 3, 1, 1)

    def forward(self, x: torch.Tensor):
        parts, band_lengths = self.SDlayer(x)
        out = []
        for module, part in zip(self.conv_modules, parts):
            b, c, f, t = part.shape
            frames = part.permute(0, 2, 1, 3).reshape(b * f, c, t)  # each bin's frames
            out.append(F.gelu(module(frames).view(b, f, c, t).permute(0, 2, 1, 3)))
        lengths = [p.shape[2] for p in out]
        joined = torch.cat(out, dim=2)
        return self.globalconv(joined), joined, lengths, band_lengths


class _Fusion(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(2 * channels, 2 * channels, 3, 1, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return F.glu(self.conv((x + skip).repeat(1, 2, 1, 1)), dim=1)


class _JoinBands(nn.Module):
    """The sparse up-sampling layer: each band up by its transposed convolution, trimmed
    symmetrically to the band's length before the down-sampling."""

    def __init__(self, in_channels: int, out_channels: int, bands: list[dict[str, Any]]):
        super().__init__()
        self.convtrs = nn.ModuleList(
            nn.ConvTranspose2d(in_channels, out_channels, (b["kernel"], 1), (b["stride"], 1))
            for b in bands)

    def forward(self, x: torch.Tensor, lengths: list[int], band_lengths: list[int]):
        cuts = [0, lengths[0], lengths[0] + lengths[1], x.shape[2]]
        out = []
        for i, conv in enumerate(self.convtrs):
            up = conv(x[:, :, cuts[i]:cuts[i + 1]])
            start = abs(band_lengths[i] - up.shape[2]) // 2
            out.append(up[:, :, start:start + band_lengths[i]])
        return torch.cat(out, dim=2)


class _DualPath(nn.Module):
    """A bidirectional LSTM across frequency, then across time, each residual."""

    def __init__(self, channels: int, expand: int):
        super().__init__()
        hidden = channels * expand
        self.lstm_layers = nn.ModuleList(
            nn.LSTM(channels, hidden, num_layers=1, bidirectional=True, batch_first=True)
            for _ in range(2))
        self.linear_layers = nn.ModuleList(nn.Linear(2 * hidden, channels) for _ in range(2))
        self.norm_layers = nn.ModuleList(nn.GroupNorm(1, channels) for _ in range(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, f, t = x.shape
        h = self.norm_layers[0](x).permute(0, 3, 2, 1).reshape(b * t, f, c)
        h = self.linear_layers[0](self.lstm_layers[0](h)[0])
        x = x + h.view(b, t, f, c).permute(0, 3, 2, 1)
        h = self.norm_layers[1](x).permute(0, 2, 3, 1).reshape(b * f, t, c)
        h = self.linear_layers[1](self.lstm_layers[1](h)[0])
        return x + h.view(b, f, t, c).permute(0, 3, 1, 2)


class _SeparationNet(nn.Module):
    """Dual-path layers; after the even ones a real FFT along time (re and im as channels),
    after the odd ones its inverse."""

    def __init__(self, channels: int, expand: int, layers: int):
        super().__init__()
        self.dp_modules = nn.ModuleList(_DualPath(channels * (2 if i % 2 else 1), expand)
                                        for i in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.dp_modules):
            x = layer(x).float()
            if i % 2 == 0:
                spec = torch.fft.rfft(x, dim=3, norm="ortho")
                x = torch.cat([spec.real, spec.imag], dim=1)
            else:
                half = x.shape[1] // 2
                x = torch.fft.irfft(torch.complex(x[:, :half], x[:, half:]), dim=3,
                                    norm="ortho")
        return x


class SCNet(nn.Module):
    """SCNet from an MSST config's ``model`` section. Input ``(batch, channels, samples)``,
    output ``(batch, sources, channels, samples)``."""

    def __init__(self, sources: list[str], audio_channels: int = 2,
                 dims: tuple[int, ...] = (4, 32, 64, 128), nfft: int = 4096,
                 hop_size: int = 1024, win_size: int = 4096, normalized: bool = True,
                 band_SR=(0.175, 0.392, 0.433), band_stride=(1, 4, 16),  # noqa: N803
                 band_kernel=(3, 4, 16), conv_depths=(3, 2, 1), compress: float = 4,
                 conv_kernel: int = 3, num_dplayer: int = 6, expand: int = 1):
        super().__init__()
        if num_dplayer % 2:
            raise SeparatorError(f"scnet: num_dplayer must be even (its FFT and inverse "
                                 f"alternate), got {num_dplayer}")
        if dims[0] != 2 * audio_channels:
            raise SeparatorError(f"scnet: dims[0] must be 2 x audio_channels (re, im of each), "
                                 f"got {dims[0]} for {audio_channels} channels")
        self.sources, self.audio_channels, self.dims = list(sources), audio_channels, list(dims)
        self.hop = hop_size
        # MSST's SCNet passes no window: torch's default, rectangular (given here explicitly,
        # which is the same transform without torch's warning)
        self.register_buffer("window", torch.ones(win_size), persistent=False)
        self.stft = {"n_fft": nfft, "hop_length": hop_size, "win_length": win_size,
                     "center": True, "normalized": normalized}
        bands = [{"SR": band_SR[i], "stride": band_stride[i], "kernel": band_kernel[i]}
                 for i in range(len(BANDS))]
        self.encoder, self.decoder = nn.ModuleList(), nn.ModuleList()
        for i in range(len(dims) - 1):
            self.encoder.append(_DownBlock(dims[i], dims[i + 1], bands, list(conv_depths),
                                           compress, conv_kernel))
            out = dims[i] * len(self.sources) if i == 0 else dims[i]
            self.decoder.insert(0, nn.Sequential(_Fusion(dims[i + 1]),
                                                 _JoinBands(dims[i + 1], out, bands)))
        self.separation_net = _SeparationNet(dims[-1], expand, num_dplayer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        # pad to whole hops and an even frame count (the separation net's FFT along time)
        padding = self.hop - x.shape[-1] % self.hop
        if (x.shape[-1] + padding) // self.hop % 2 == 0:
            padding += self.hop
        x = F.pad(x, (0, padding))
        spec = torch.view_as_real(torch.stft(x.reshape(-1, x.shape[-1]), **self.stft,
                                             window=self.window, return_complex=True))
        bins, frames = spec.shape[1], spec.shape[2]
        h = spec.permute(0, 3, 1, 2).reshape(batch, 2 * self.audio_channels, bins, frames)
        skips = []
        for block in self.encoder:
            h, skip, lengths, band_lengths = block(h)
            skips.append((skip, lengths, band_lengths))
        h = self.separation_net(h)
        for fusion, join in self.decoder:
            skip, lengths, band_lengths = skips.pop()
            h = join(fusion(h, skip), lengths, band_lengths)
        spec = h.reshape(-1, 2, bins, frames).permute(0, 2, 3, 1).contiguous()
        wave = torch.istft(torch.view_as_complex(spec), **self.stft, window=self.window)
        wave = wave.reshape(batch, len(self.sources), self.audio_channels, -1)
        return wave[..., :-padding]


def build_scnet(config: dict) -> SCNet:
    import inspect

    from .config import section

    model = dict(section(config, "model"))
    accepted = set(inspect.signature(SCNet.__init__).parameters) - {"self"}
    unknown = sorted(set(model) - accepted)
    if unknown:
        raise SeparatorError(f"scnet: config keys this network does not have: "
                             f"{', '.join(unknown)}")
    model.setdefault("sources", section(config, "training").get("instruments"))
    try:
        return SCNet(**model)
    except (TypeError, ValueError, IndexError) as exc:
        raise SeparatorError(f"scnet: the config's model section does not build the network "
                             f"({exc!r})") from None
