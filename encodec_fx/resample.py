"""The one resampler of the package: files read at the model's rate, archives decoded to the original
rate, the effects' batch and streaming modes.

A polyphase FIR, Kaiser-windowed sinc with 32 zero crossings each side, β = 10, cut off at 0.96 of the
lower Nyquist frequency, zero phase (the output is time-aligned with the input). Chosen by measurement
(`benchmarks/resampling.py`, AMD EPYC VM, 2026-12-07) over scipy's `resample_poly` default (β = 5, 10
crossings: a tone 5 % above the lower Nyquist frequency aliases back at −12 dB) and pedalboard's
`StreamResampler` (−39 dB there, 1.1–5.6× slower on whole files): −67 dB there, −0.2 dB at 0.9 of
Nyquist, −4 dB at 0.95 (the top 5 % of the band, where the codec keeps little, is the price).

`Resampler` runs the filter on a stream: it withholds the outputs whose taps reach past the input it
has (`latency` of them), and `flush` computes those at the end as if zeros followed. The outputs of a
whole stream are `resample`'s of the whole signal, ceil(n · to_rate / from_rate) samples.
"""

from __future__ import annotations

from functools import lru_cache
from math import gcd

import numpy as np
from pedalboard.io import AudioFile

ZERO_CROSSINGS = 32
KAISER_BETA = 10.0
CUTOFF = 0.96  # of the lower Nyquist frequency


@lru_cache(maxsize=16)
def _filter(up: int, down: int) -> tuple[np.ndarray, int]:
    """Taps (gain `up`, zero-padded in front so that output 0 is aligned with input 0 after dropping
    `latency` outputs) and that latency."""
    from scipy.signal import firwin  # here, not at the top: scipy.signal takes ~0.8 s to import
    half_length = ZERO_CROSSINGS * max(up, down)
    taps = firwin(2 * half_length + 1, CUTOFF / max(up, down), window=("kaiser", KAISER_BETA))
    pre_pad = down - half_length % down
    taps = np.concatenate([np.zeros(pre_pad), taps]).astype(np.float32) * up
    taps.setflags(write=False)
    return taps, (half_length + pre_pad) // down


def _ratio(from_rate: int, to_rate: int) -> tuple[int, int]:
    common = gcd(int(from_rate), int(to_rate))
    return int(to_rate) // common, int(from_rate) // common


def resampled_length(length: int, from_rate: int, to_rate: int) -> int:
    """Samples that `length` samples at `from_rate` become at `to_rate`: ceil(length · to / from)."""
    up, down = _ratio(from_rate, to_rate)
    return -(-length * up // down)


def resample(audio: np.ndarray, from_rate: int, to_rate: int, num_samples: int | None = None) -> np.ndarray:
    """Resample (..., samples) float32 audio along its last axis.

    The result has ceil(samples · to_rate / from_rate) samples, or exactly `num_samples` (cut at the
    end) when given, which restores the original length after a round trip.
    """
    up, down = _ratio(from_rate, to_rate)
    if up != down:
        from scipy.signal import upfirdn
        taps, latency = _filter(up, down)
        length = resampled_length(audio.shape[-1], from_rate, to_rate)
        audio = upfirdn(taps, audio, up, down, axis=-1)[..., latency: latency + length].astype(np.float32)
    if num_samples is not None:
        audio = audio[..., :num_samples]
    return audio


class Resampler:
    """(..., samples) float32 blocks at `from_rate` → the outputs at `to_rate` that they complete."""

    def __init__(self, from_rate: int, to_rate: int):
        self.up, self.down = _ratio(from_rate, to_rate)
        self.taps: np.ndarray | None = None  # none for equal rates: the audio passes through
        self.leading_shape: tuple[int, ...] = ()  # the blocks' shape but for the samples (channels)
        self.latency = 0
        if self.up != self.down:
            self.taps, self.latency = _filter(self.up, self.down)
        self.reset()

    def reset(self) -> None:
        self.buffer: np.ndarray | None = None  # input from sample `buffer_start` on
        self.buffer_start = 0  # a multiple of `down`, so that the buffer's outputs align with the stream's
        self.inputs = 0  # samples received
        self.next_output = 0  # index, in upfirdn's output (before the latency is dropped), of the next output

    def output_length(self, input_length: int) -> int:
        """How many samples the first `input_length` inputs give before `flush`."""
        if self.taps is None:
            return input_length
        return max(0, -(-input_length * self.up // self.down) - self.latency)

    def process(self, block: np.ndarray) -> np.ndarray:
        """The outputs that `block` completes."""
        self.leading_shape = block.shape[:-1]
        if self.taps is None:
            return block
        self.buffer = block if self.buffer is None else np.concatenate([self.buffer, block], axis=-1)
        self.inputs += block.shape[-1]
        # the outputs whose taps end in the input
        return self._outputs(self.taps, self.buffer, -(-self.inputs * self.up // self.down))

    def flush(self) -> np.ndarray:
        """The withheld outputs, as if zeros followed the input; then reset. Nothing withheld (the rates
        are equal, or nothing was pushed since the last flush): no samples, shaped as the last block was."""
        if self.buffer is None or self.taps is None:
            return np.zeros((*self.leading_shape, 0), np.float32)
        end = self.latency + -(-self.inputs * self.up // self.down)
        tail = np.zeros((*self.buffer.shape[:-1], len(self.taps) // self.up + 1), np.float32)
        out = self._outputs(self.taps, np.concatenate([self.buffer, tail], axis=-1), end)
        self.reset()
        return out

    def _outputs(self, taps: np.ndarray, buffer: np.ndarray, end: int) -> np.ndarray:
        """Outputs up to `end` (upfirdn's index) of the input from `buffer_start` on (`buffer`)."""
        from scipy.signal import upfirdn  # imported on first use (cached by Python after)
        offset = self.buffer_start * self.up // self.down
        filtered = upfirdn(taps, buffer, self.up, self.down, axis=-1)
        filtered = filtered[..., self.next_output - offset: end - offset]
        first_kept = max(self.next_output, self.latency)
        out = filtered[..., first_kept - self.next_output:].astype(np.float32, copy=False)
        self.next_output = max(self.next_output, end)
        # keep the input from the first sample the next output's taps reach, rounded down to a multiple of `down`
        earliest = (self.next_output * self.down - len(taps) + 1) // self.up
        start = max(self.buffer_start, earliest // self.down * self.down)
        self.buffer = buffer[..., start - self.buffer_start:]
        self.buffer_start = start
        return out


class ResampledReader:
    """An open pedalboard `AudioFile` read at another rate: `frames` and `read(n)` as the file's own."""

    BLOCK = 65536  # input samples read at a time

    def __init__(self, file: AudioFile, sample_rate: int):
        self.file, self.samplerate, self.num_channels = file, sample_rate, file.num_channels
        self.resampler = Resampler(int(file.samplerate), sample_rate)
        self.frames = resampled_length(file.frames, int(file.samplerate), sample_rate)
        self.pending = np.zeros((file.num_channels, 0), np.float32)
        self.finished = False

    def read(self, count: int) -> np.ndarray:
        """Up to `count` samples (channels, n); fewer only at the end."""
        while self.pending.shape[-1] < count and not self.finished:
            block = self.file.read(self.BLOCK)
            if block.shape[-1]:
                out = self.resampler.process(block)
            else:
                out, self.finished = self.resampler.flush(), True
            if out.shape[-1]:
                self.pending = np.concatenate([self.pending, out], axis=-1)
        out, self.pending = self.pending[:, :count], self.pending[:, count:]
        return out
