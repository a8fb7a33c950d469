"""The effect protocol, pedalboard's: `effect(input_array, sample_rate, buffer_size=8192, reset=True)`.

Effects exchange one of two kinds of signal: audio (numpy arrays, see `layout`) or codes (`Codes`,
EnCodec tokens). Each effect declares the kind it takes and the kind it gives, so a `Chain` can
check the flow when it is built.

Two modes, as in pedalboard. Batch (`reset=True`, the default): the effect is reset, then processes
one whole signal and returns all of it, time-aligned. Streaming (`reset=False`): each call is the
next block of one stream; state carries over, and an effect whose output needs input it has not
seen yet withholds it: the first calls return fewer samples (never padded at the front), `latency`
samples in all, and the concatenated outputs are the batch output of the whole stream. Flush the
end by calling on with blocks of zeros. `reset()` ends the stream and keeps the parameters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from entropy.number_checks import is_finite_number, is_integer

AUDIO = "audio"
CODES = "codes"


class Effect(ABC):
    """Base of our effects: pedalboard's call signature, `process` alias, `reset()` and `latency`."""

    input_kind: ClassVar[str] = AUDIO
    output_kind: ClassVar[str] = AUDIO
    _stream_rate: int | None = None  # the sample rate of the current (or last) stream
    _streaming: bool = False  # whether a stream has started since the last reset

    def __call__(self, input_array: Any, sample_rate: float, buffer_size: int = 8192, reset: bool = True) -> Any:
        return self.process(input_array, sample_rate, buffer_size, reset)

    def process(self, input_array: Any, sample_rate: float, buffer_size: int = 8192, reset: bool = True) -> Any:
        """A whole signal (`reset=True`) or the next block of a stream (`reset=False`).
        `buffer_size` only matters to native plugins inside a `Chain`."""
        sample_rate, buffer_size = check_sample_rate(sample_rate), check_buffer_size(buffer_size)
        if not isinstance(reset, (bool, np.bool_)):  # None (a forgotten argument) would stream
            raise ValueError("reset must be True (a whole signal) or False (the next block of a stream), "
                             f"got {reset!r}")
        if reset:
            self.reset()
            return self._process(input_array, sample_rate, buffer_size)
        if self._streaming and sample_rate != self._stream_rate:
            raise ValueError(f"{type(self).__name__}: this stream runs at {self._stream_rate} Hz, got a block at "
                             f"{sample_rate} Hz; call reset() to start another stream")
        self._stream_rate, self._streaming = sample_rate, True
        return self._stream(input_array, sample_rate, buffer_size)

    @abstractmethod
    def _process(self, signal: Any, sample_rate: int, buffer_size: int) -> Any:
        """Process one validated batch call."""

    @abstractmethod
    def _stream(self, signal: Any, sample_rate: int, buffer_size: int) -> Any:
        """Process the next block of a stream."""

    def latency_at(self, sample_rate: int) -> int:
        """Samples withheld at the start of a stream at `sample_rate`; what a caller must flush."""
        return 0

    @property
    def latency(self) -> int:
        """`latency_at` the current (or last) stream's rate; before any stream, at `default_rate`."""
        return self.latency_at(self._stream_rate or self.default_rate)

    @property
    def default_rate(self) -> int:
        """The rate `latency` assumes before a stream has started (a codec effect's: its model's)."""
        return 48000

    def reset(self) -> None:
        """End the stream: clear all state, keep the parameters."""
        self._streaming = False
        self._clear_stream()

    def _clear_stream(self) -> None:
        """Forget the stream's state (effects that keep some override this)."""


SAMPLE_RATES = (1_000, 768_000)
"""The sample rates taken, in Hz. Resampling to the model's rate builds filters of 64 x max(up, down)
taps (`encodec_fx.resample`), so a rate from a corrupt header (123456789 Hz) or a kHz mix-up (8 for 8000)
asked for gigabytes."""


def check_sample_rate(sample_rate: float) -> int:
    """A whole number of Hz within SAMPLE_RATES (resampling needs an exact rational ratio)."""
    low, high = SAMPLE_RATES
    if not is_finite_number(sample_rate) or not low <= sample_rate <= high or sample_rate != int(sample_rate):
        raise ValueError(f"sample_rate must be a whole number of Hz from {low} to {high}, got {sample_rate!r}")
    return int(sample_rate)


def check_buffer_size(buffer_size: int) -> int:
    """A positive integer: pedalboard hangs on buffer_size=0, so it is checked before reaching it."""
    if not is_integer(buffer_size) or buffer_size < 1:
        raise ValueError(f"buffer_size must be a positive integer, got {buffer_size!r}")
    return int(buffer_size)
