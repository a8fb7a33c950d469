"""Array layouts as pedalboard reads them, so our effects accept and return what native plugins do.

1-D arrays are mono. In a 2-D array the smaller dimension is channels: (channels, samples) and
(samples, channels) both work and the output keeps the input's layout. Square arrays are ambiguous
and 3-D arrays are not audio; dtypes other than float32 and float64 (either byte order) raise
TypeError, as in pedalboard. NaN and infinite samples raise ValueError.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AudioLayout:
    """How the caller's array was laid out, to give the output back in the same shape."""

    num_channels: int
    num_samples: int
    ndim: int
    channels_first: bool

    def restore(self, audio: np.ndarray) -> np.ndarray:
        """(channels, samples) float audio → the caller's layout, float32."""
        expected = (self.num_channels, self.num_samples)
        if audio.shape != expected:
            raise ValueError(f"audio has shape {audio.shape}; expected {expected} to restore the input layout")
        audio = audio.astype(np.float32, copy=False)
        if self.ndim == 1:
            return audio[0].copy()
        return np.ascontiguousarray(audio if self.channels_first else audio.T)


def check_array(input_array: object) -> None:
    """pedalboard's audio arrays: 32- or 64-bit floats, in either byte order."""
    if not isinstance(input_array, np.ndarray):
        raise TypeError(f"audio must be a numpy array, got {type(input_array).__name__}")
    if input_array.dtype.kind != "f" or input_array.dtype.itemsize not in (4, 8):
        raise TypeError(f"audio has dtype {input_array.dtype}; only 32-bit and 64-bit floating point audio "
                        "is supported (convert integer PCM first, e.g. x / 32768)")


def as_samples(audio: np.ndarray) -> np.ndarray:
    """Contiguous float32, refused if not finite: checked before a stream takes the block in, so a
    bad block leaves the stream as it was."""
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, refused below
        samples = np.ascontiguousarray(audio, dtype=np.float32)
    if not np.isfinite(samples).all():
        raise ValueError("audio contains NaN or infinite samples, or samples beyond float32's range; "
                         "expected finite samples")
    return samples


def read_array(input_array: np.ndarray) -> tuple[np.ndarray, AudioLayout]:
    """The caller's audio as float32 (channels, samples), with its layout."""
    check_array(input_array)
    if input_array.size == 0:
        raise ValueError(f"audio is empty (shape {input_array.shape}); expected at least one sample")
    if input_array.ndim == 1:
        layout = AudioLayout(1, input_array.shape[0], 1, True)
        return as_samples(input_array[np.newaxis]), layout
    if input_array.ndim != 2:
        raise ValueError(f"audio has {input_array.ndim} dimensions (shape {input_array.shape}); expected 1 "
                         "(mono) or 2 ((channels, samples) or (samples, channels))")
    rows, columns = input_array.shape
    if rows == columns:
        raise ValueError(f"audio has square shape {input_array.shape}: cannot tell channels from samples")
    channels_first = rows < columns
    audio = input_array if channels_first else input_array.T
    layout = AudioLayout(audio.shape[0], audio.shape[1], 2, channels_first)
    return as_samples(audio), layout


def stream_layout(first_block: np.ndarray) -> AudioLayout:
    """The layout all blocks of a stream keep, read from its first block as `read_array` reads it. An
    empty first block (an effect upstream still withholding its latency) is read by its non-zero
    dimension: (2, 0) is stereo channels-first, (0, 2) stereo channels-last."""
    if isinstance(first_block, np.ndarray) and first_block.size == 0 and first_block.ndim in (1, 2):
        if first_block.ndim == 1:
            return AudioLayout(1, 0, 1, True)
        rows, columns = first_block.shape
        if (rows == 0) != (columns == 0):
            return AudioLayout(max(rows, columns), 0, 2, columns == 0)
    return read_array(first_block)[1]


def read_block(input_array: np.ndarray, stream: AudioLayout) -> tuple[np.ndarray, AudioLayout]:
    """A streaming block read in the stream's layout (set by its first block), so that blocks of any
    length, even 0 or 1 samples, keep their meaning. Returns float32 (channels, samples) and the
    block's own layout."""
    check_array(input_array)
    audio = input_array[np.newaxis] if input_array.ndim == 1 else input_array
    if input_array.ndim == 2 and not stream.channels_first:
        audio = audio.T
    if input_array.ndim != stream.ndim or audio.shape[0] != stream.num_channels:
        expected = ("(samples,)" if stream.ndim == 1 else f"({stream.num_channels}, samples)" if stream.channels_first
                    else f"(samples, {stream.num_channels})")
        raise ValueError(f"audio block has shape {input_array.shape}, but this stream's blocks are {expected}; "
                         "call reset() to start another stream")
    layout = AudioLayout(stream.num_channels, audio.shape[1], stream.ndim, stream.channels_first)
    return as_samples(audio), layout
