"""Reconstruction losses: the multi-scale mel-spectrogram loss of the EnCodec paper.

The paper (§3.4) defines, for mel spectrograms S_i with window 2^i and hop 2^i / 4, i = 5…11:

    l_f(x, x̂) = 1 / (|α|·|s|) · Σ_i ( ||S_i(x) − S_i(x̂)||_1 + α_i ||S_i(x) − S_i(x̂)||_2 ),  α_i = 1.

We follow the later open re-implementation (audiocraft's `MultiScaleMelSpectrogramLoss`) in taking
the L1 term on the linear mel magnitude and the L2 (mean squared) term on the log10 mel: the log term
keeps quiet bands from vanishing next to loud ones, which a second term on the linear scale does not.
Both terms are means over elements and the sum is divided by the number of scales, so the loss does
not depend on segment length. The time-domain loss is `F.l1_loss`, on the whole band (the paper's) or
on both signals low-passed (`TimeLoss`); SI-SNR, the validation metric, lives here too.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def hz_to_mel(frequency: torch.Tensor) -> torch.Tensor:
    """The HTK mel scale (torchaudio's default)."""
    return 2595.0 * torch.log10(1.0 + frequency / 700.0)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """(n_fft // 2 + 1, n_mels) triangular filters evenly spaced in mel from 0 Hz to Nyquist, unnormalised.

    With short windows some filters fall between FFT bins and are all zero; they then contribute
    nothing to the loss, which is what the paper's smallest scales do too."""
    frequencies = torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = mel_to_hz(torch.linspace(0.0, float(hz_to_mel(torch.tensor(sample_rate / 2.0))), n_mels + 2,
                                     dtype=torch.float64))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (frequencies[:, None] - lower) / (centre - lower)
    falling = (upper - frequencies[:, None]) / (upper - centre)
    return rising.minimum(falling).clamp(min=0.0).float()


def stft(audio: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Complex STFT (batch, channels, freqs, frames) of (batch, channels, samples), hop = window / 4, no
    centring, normalised by the window's energy; inputs shorter than the window are zero-padded."""
    batch, channels, length = audio.shape
    window_length = window.shape[0]
    flat = F.pad(audio.reshape(batch * channels, length), (0, max(0, window_length - length)))
    spectrum = torch.stft(flat, window_length, hop_length=window_length // 4, window=window, center=False,
                          return_complex=True)
    spectrum = spectrum / window.pow(2).sum().sqrt()
    return spectrum.view(batch, channels, *spectrum.shape[-2:])


class MelSpectrogram(nn.Module):
    """Mel magnitude spectrogram (batch, channels, n_mels, frames) at one window length."""

    window: torch.Tensor
    filterbank: torch.Tensor

    def __init__(self, sample_rate: int, window_length: int, n_mels: int = 64):
        super().__init__()
        self.register_buffer("window", torch.hann_window(window_length), persistent=False)
        self.register_buffer("filterbank", mel_filterbank(sample_rate, window_length, n_mels), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        magnitude = stft(audio, self.window).abs()
        return torch.einsum("bcft,fm->bcmt", magnitude, self.filterbank)


class MultiScaleMelLoss(nn.Module):
    """L1 on linear mel + mean squared error on log10 mel, averaged over windows 2^5 … 2^11."""

    def __init__(self, sample_rate: int, n_mels: int = 64, window_exponents: range = range(5, 12),
                 log_floor: float = 1e-5):
        super().__init__()
        self.log_floor = log_floor
        self.spectrograms = nn.ModuleList(MelSpectrogram(sample_rate, 2**i, n_mels) for i in window_exponents)

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        total = estimate.new_zeros(())
        for spectrogram in self.spectrograms:
            mel_estimate, mel_reference = spectrogram(estimate), spectrogram(reference)
            total = total + F.l1_loss(mel_estimate, mel_reference)
            total = total + F.mse_loss(self._log(mel_estimate), self._log(mel_reference))
        return total / len(self.spectrograms)

    def _log(self, mel: torch.Tensor) -> torch.Tensor:
        return torch.log10(mel.clamp(min=self.log_floor))


class TimeLoss(nn.Module):
    """L1 between waveforms, optionally below `cutoff_hz` only.

    Where a small codec cannot reproduce a band's phase, the L1-optimal output in that band is
    silence, and the time loss teaches the decoder to drop it (training/LOG.md, issue 16); the mel
    loss asks for the band's energy whatever its phase. Low-passing both signals keeps the waveform
    alignment that the time loss gives where the codec can follow the phase, and leaves the band
    above the cutoff to the mel loss. The low-pass is a Blackman-windowed sinc of `TAPS` taps
    (transition about 5.5 · rate / TAPS wide, stopband below −74 dB), zero-padded at the ends."""

    TAPS = 255
    kernel: torch.Tensor  # only when filtered

    def __init__(self, sample_rate: int, cutoff_hz: float = 0.0):
        super().__init__()
        self.filtered = cutoff_hz > 0
        if self.filtered:
            time = torch.arange(self.TAPS, dtype=torch.float64) - (self.TAPS - 1) / 2
            kernel = torch.special.sinc(2 * cutoff_hz / sample_rate * time) * torch.blackman_window(
                self.TAPS, periodic=False, dtype=torch.float64)
            self.register_buffer("kernel", (kernel / kernel.sum()).float().view(1, 1, -1), persistent=False)

    @classmethod
    def lowest_cutoff(cls, sample_rate: int) -> float:
        """The lowest cutoff the filter resolves: its transition band's width (below it, every cutoff gives
        about the same filter)."""
        return math.ceil(5.5 * sample_rate / cls.TAPS)

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        if self.filtered:
            estimate, reference = self.low_pass(estimate), self.low_pass(reference)
        return F.l1_loss(estimate, reference)

    def low_pass(self, audio: torch.Tensor) -> torch.Tensor:
        batch, channels, length = audio.shape
        flat = audio.reshape(batch * channels, 1, length)
        return F.conv1d(flat, self.kernel, padding=self.kernel.shape[-1] // 2).view(batch, channels, length)


def si_snr(estimate: torch.Tensor, reference: torch.Tensor, epsilon: float = 1e-8) -> torch.Tensor:
    """Scale-invariant signal-to-noise ratio in dB of each item of (batch, channels, samples), all
    channels together; higher is better."""
    estimate = estimate.flatten(1) - estimate.flatten(1).mean(dim=1, keepdim=True)
    reference = reference.flatten(1) - reference.flatten(1).mean(dim=1, keepdim=True)
    scale = (estimate * reference).sum(1, keepdim=True) / (reference.pow(2).sum(1, keepdim=True) + epsilon)
    target = scale * reference
    noise = estimate - target
    return 10 * torch.log10((target.pow(2).sum(1) + epsilon) / (noise.pow(2).sum(1) + epsilon))

