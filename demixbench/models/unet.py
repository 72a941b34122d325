"""The spectrogram U-Net of the seed report (003, section 4.1), sized for a CPU.

- input: the mixture's magnitude STFT (``n_fft``, ``hop``, Hann window), ``log1p``-compressed and
  normalised by a BatchNorm over its channels; the top frequency bin is dropped so that the
  frequency axis halves evenly (its mask is that of the bin below);
- encoder: ``depth`` levels of two 3x3 convolutions with BatchNorm and ReLU, each followed by
  a 2x2 max-pool halving frequency and time (the time axis is zero-padded to a multiple of
  ``2^depth`` frames);
- bottleneck: a bidirectional LSTM over time on the deepest level's (channels x frequency)
  features, projected to ``lstm_hidden`` first (the report's 2048-channel bottleneck overfitted);
- decoder: transposed 2x2 convolutions, concatenation with the encoder level (skip connection),
  two 3x3 convolutions with BatchNorm and ReLU;
- output: a sigmoid soft mask per (source, channel) on the mixture's magnitude; the estimate is
  the masked complex STFT (mixture phase) through the inverse STFT.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import STEMS


@dataclass(frozen=True)
class UNetConfig:
    n_fft: int = 2048
    hop: int = 512
    channels: int = 12  # first level; doubled at each level
    depth: int = 4
    lstm_hidden: int = 64
    sources: tuple[str, ...] = STEMS
    audio_channels: int = 2
    samplerate: int = 44100


def build_unet(config: UNetConfig):
    import torch
    from torch import nn

    def double_conv(cin: int, cout: int):
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    class SpectrogramUNet(nn.Module):
        def __init__(self, cfg: UNetConfig):
            super().__init__()
            self.config = cfg
            self.sources = list(cfg.sources)
            self.samplerate = cfg.samplerate
            self.audio_channels = cfg.audio_channels
            bins = cfg.n_fft // 2  # the top bin dropped
            if bins % 2 ** cfg.depth:
                raise ValueError(f"n_fft/2 = {bins} must be divisible by 2^depth = {2 ** cfg.depth}")
            a = cfg.audio_channels
            widths = [cfg.channels * 2 ** i for i in range(cfg.depth + 1)]
            self.input_norm = nn.BatchNorm2d(a)
            self.down = nn.ModuleList()
            cin = a
            for w in widths[:-1]:
                self.down.append(double_conv(cin, w))
                cin = w
            self.pool = nn.MaxPool2d(2)
            deep = widths[-2]
            deep_bins = bins // 2 ** cfg.depth
            self.to_lstm = nn.Linear(deep * deep_bins, cfg.lstm_hidden)
            self.lstm = nn.LSTM(cfg.lstm_hidden, cfg.lstm_hidden // 2, batch_first=True,
                                bidirectional=True)
            self.from_lstm = nn.Linear(cfg.lstm_hidden, widths[-1] * deep_bins)
            self.up = nn.ModuleList()
            self.up_conv = nn.ModuleList()
            for w_deep, w in zip(widths[:0:-1], widths[-2::-1]):
                self.up.append(nn.ConvTranspose2d(w_deep, w, 2, stride=2))
                self.up_conv.append(double_conv(2 * w, w))
            self.mask = nn.Conv2d(widths[0], len(self.sources) * a, 1)
            self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)

        def _stft(self, x):
            b, a, n = x.shape
            spec = torch.stft(x.reshape(b * a, n), self.config.n_fft, self.config.hop,
                              window=self.window, return_complex=True)
            return spec.view(b, a, *spec.shape[-2:])  # (b, a, F, T)

        def forward(self, mix):
            cfg = self.config
            b, a, n = mix.shape
            spec = self._stft(mix)
            frames = spec.shape[-1]
            step = 2 ** cfg.depth
            padded = -(-frames // step) * step
            mag = spec.abs()[:, :, :-1]  # (b, a, F - 1, T): drop the top bin
            x = torch.log1p(mag)
            x = torch.nn.functional.pad(x, (0, padded - frames))
            x = self.input_norm(x)
            skips = []
            for level in self.down:
                x = level(x)
                skips.append(x)
                x = self.pool(x)
            c, f, t = x.shape[1:]
            z = self.to_lstm(x.permute(0, 3, 1, 2).reshape(b, t, c * f))
            z, _ = self.lstm(z)
            x = self.from_lstm(z).view(b, t, -1, f).permute(0, 2, 3, 1)
            for up, conv, skip in zip(self.up, self.up_conv, reversed(skips)):
                x = conv(torch.cat([up(x), skip], dim=1))
            masks = torch.sigmoid(self.mask(x))[..., :frames]  # (b, S * a, F - 1, T)
            masks = masks.view(b, len(self.sources), a, *masks.shape[-2:])
            masks = torch.cat([masks, masks[:, :, :, -1:]], dim=3)  # the top bin: as below
            est = masks * spec[:, None]
            flat = est.reshape(b * len(self.sources) * a, *est.shape[-2:])
            out = torch.istft(flat, cfg.n_fft, cfg.hop, window=self.window, length=n)
            return out.view(b, len(self.sources), a, n)

    return SpectrogramUNet(config)
