"""Streaming resampling that gives exactly what the batch resampler (`resample`) gives.

`scipy.signal.resample_poly` is a zero-phase polyphase FIR: each output sample looks about
`10 · max(up, down)` upsampled samples ahead. Streaming cannot look ahead, so `StreamingResampler`
runs the very same filter (same taps, same alignment, same zero padding before the start) on the
input it has, and withholds the outputs whose taps reach past it: the first calls return fewer
samples (pedalboard's convention), and the concatenated outputs are the batch output of the whole
stream. Its `latency` is that look-ahead, in output samples.
"""

from __future__ import annotations

from math import gcd

import numpy as np


class StreamingResampler:
    """(channels, samples) float32 blocks at `from_rate` → the outputs at `to_rate` they complete."""

    def __init__(self, from_rate: int, to_rate: int):
        common = gcd(from_rate, to_rate)
        self.up, self.down = to_rate // common, from_rate // common
        if self.up == self.down:
            self.latency, self.taps = 0, None
        else:  # resample_poly's filter and alignment, Kaiser β = 5 (its default window)
            half_length = 10 * max(self.up, self.down)
            from scipy.signal import firwin  # here, not at the top: scipy.signal takes ~0.8 s to import
            taps = firwin(2 * half_length + 1, 1.0 / max(self.up, self.down), window=("kaiser", 5.0))
            taps = taps.astype(np.float32) * self.up
            pre_pad = self.down - half_length % self.down
            self.taps = np.concatenate([np.zeros(pre_pad, dtype=np.float32), taps])
            self.latency = (half_length + pre_pad) // self.down  # outputs resample_poly drops at the start
        self.reset()

    def reset(self) -> None:
        self.buffer: np.ndarray | None = None  # input from sample `buffer_start` on
        self.buffer_start = 0  # a multiple of `down`, so that the buffer's outputs align with the stream's
        self.inputs = 0  # samples received
        self.next_output = 0  # index, in upfirdn's output (before the latency is dropped), of the next output

    def output_length(self, input_length: int) -> int:
        """How many samples the first `input_length` inputs give."""
        if self.taps is None:
            return input_length
        return max(0, -(-input_length * self.up // self.down) - self.latency)

    def process(self, block: np.ndarray) -> np.ndarray:
        if self.taps is None:
            return block
        if block.shape[-1] == 0:
            return np.zeros(block.shape, dtype=np.float32)
        self.buffer = block if self.buffer is None else np.concatenate([self.buffer, block], axis=-1)
        self.inputs += block.shape[-1]
        end = -(-self.inputs * self.up // self.down)  # outputs whose taps stop within the input received
        offset = self.buffer_start * self.up // self.down
        from scipy.signal import upfirdn  # imported on first use (cached by Python after)
        filtered = upfirdn(self.taps, self.buffer, self.up, self.down, axis=-1)
        filtered = filtered[..., self.next_output - offset: end - offset]
        first_kept = max(self.next_output, self.latency)
        out = filtered[..., first_kept - self.next_output:].astype(np.float32, copy=False)
        self.next_output = end
        self._forget_old_input()
        return out

    def _forget_old_input(self) -> None:
        """Keep the input from the first sample the next output's taps reach, rounded down to a multiple of `down`."""
        earliest = (self.next_output * self.down - len(self.taps) + 1) // self.up
        start = max(self.buffer_start, earliest // self.down * self.down)
        self.buffer = self.buffer[..., start - self.buffer_start:]
        self.buffer_start = start
