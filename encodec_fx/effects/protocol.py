"""The effect protocol, pedalboard's: `effect(input_array, sample_rate, buffer_size=8192, reset=True)`.

Effects exchange one of two kinds of signal: audio (numpy arrays, see `layout`) or codes (`Codes`,
EnCodec tokens). Each effect declares the kind it takes and the kind it gives, so a `Chain` can
check the flow when it is built. Only batch processing (`reset=True`) exists so far: every call is
independent and returns its whole input's length; streaming (`reset=False`) is not supported yet.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from typing import Any, ClassVar

AUDIO = "audio"
CODES = "codes"


class Effect(ABC):
    """Base of our effects: pedalboard's call signature, `process` alias and `reset()`."""

    input_kind: ClassVar[str] = AUDIO
    output_kind: ClassVar[str] = AUDIO

    def __call__(self, input_array: Any, sample_rate: float, buffer_size: int = 8192, reset: bool = True) -> Any:
        return self.process(input_array, sample_rate, buffer_size, reset)

    def process(self, input_array: Any, sample_rate: float, buffer_size: int = 8192, reset: bool = True) -> Any:
        """Process a whole signal. `buffer_size` only matters to native plugins inside a `Chain`."""
        require_batch_mode(reset, type(self).__name__)
        return self._process(input_array, check_sample_rate(sample_rate), check_buffer_size(buffer_size))

    @abstractmethod
    def _process(self, signal: Any, sample_rate: int, buffer_size: int) -> Any:
        """Process one validated batch call."""

    def reset(self) -> None:
        """Clear internal state. Batch effects keep none between calls; here for pedalboard's protocol."""


def require_batch_mode(reset: bool, effect_name: str) -> None:
    if not reset:
        raise NotImplementedError(f"{effect_name}: streaming (reset=False) is not supported yet; "
                                  "process whole signals with reset=True")


def check_sample_rate(sample_rate: float) -> int:
    """A positive whole number of Hz (resampling needs an exact rational ratio)."""
    if (isinstance(sample_rate, bool) or not isinstance(sample_rate, numbers.Real)
            or not math.isfinite(sample_rate) or sample_rate <= 0 or sample_rate != int(sample_rate)):
        raise ValueError(f"sample_rate must be a positive whole number of Hz, got {sample_rate!r}")
    return int(sample_rate)


def check_buffer_size(buffer_size: int) -> int:
    """A positive integer: pedalboard hangs on buffer_size=0, so it is checked before reaching it."""
    if isinstance(buffer_size, bool) or not isinstance(buffer_size, numbers.Integral) or buffer_size < 1:
        raise ValueError(f"buffer_size must be a positive integer, got {buffer_size!r}")
    return int(buffer_size)
