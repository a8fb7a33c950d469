"""Chunk-by-chunk coding for chunked models (48 kHz): constant memory, same result as the whole input.

The model codes 1 s chunks that start every `chunk_stride` samples and cross-fades the decoded
chunks. `ChunkedEncoder` holds at most one chunk of audio; `ChunkedDecoder` holds one chunk of
overlap-add state and releases each stretch of audio as soon as no later chunk can touch it. The
additions happen in the same order as in `EncodecModel.decode`, so the output is identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .overlap import crossfade_weight
from .validation import check_samples, tensor_of

if TYPE_CHECKING:  # the model builds on this module (`model.stream_encoder`)
    from .model import EncodecModel


class ChunkedEncoder:
    """Audio blocks (batch, channels, n) of any size → (codes [batch, n_q, frames], scale) per chunk."""

    def __init__(self, model: EncodecModel, bandwidth: float):
        if model.config.chunk_length is None:
            raise ValueError("ChunkedEncoder needs a chunked model (chunk_length_s set, e.g. the 48 kHz one); "
                             "stream unchunked models with StreamingEncoder")
        # refused now, not once the first chunk is complete
        self.model, self.num_quantizers = model, model.num_quantizers_for_bandwidth(bandwidth)
        self.reset()

    @classmethod
    def of_checked(cls, model: EncodecModel, num_quantizers: int) -> ChunkedEncoder:
        """For a caller that has checked the model and resolved the bandwidth (`model.stream_encoder`)."""
        encoder = cls.__new__(cls)
        encoder.model, encoder.num_quantizers = model, num_quantizers
        encoder.reset()
        return encoder

    def reset(self) -> None:
        self._buffer: torch.Tensor | None = None  # audio from the next chunk's start on

    def push(self, audio: torch.Tensor | np.ndarray) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Every chunk that is complete once `audio` is appended."""
        audio = self._check_block(audio)
        self._buffer = audio if self._buffer is None else torch.cat([self._buffer, audio], dim=-1)
        chunks = []
        chunk_length = self.model.config.chunk_sizes()[0]
        while self._buffer.shape[-1] >= chunk_length:
            chunks.append(self._encode_next())
        return chunks

    def flush(self) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """The chunks that start before the end of the stream (the last ones shorter)."""
        chunks = []
        while self._buffer is not None and self._buffer.shape[-1] > 0:
            chunks.append(self._encode_next())
        self.reset()
        return chunks

    def _check_block(self, audio: torch.Tensor | np.ndarray) -> torch.Tensor:
        channels = self.model.config.audio_channels
        if not isinstance(audio, (torch.Tensor, np.ndarray)) or audio.ndim != 3 or audio.shape[1] != channels:
            shape = tuple(audio.shape) if isinstance(audio, (torch.Tensor, np.ndarray)) else type(audio).__name__
            raise ValueError(f"audio block is {shape}; expected a tensor or array (batch, {channels}, samples)")
        if self._buffer is not None and audio.shape[0] != self._buffer.shape[0]:
            raise ValueError(f"audio block has batch {audio.shape[0]}, but this stream has batch "
                             f"{self._buffer.shape[0]}; call reset() to start another stream")
        audio = tensor_of(audio, "audio block") if isinstance(audio, np.ndarray) else audio
        if audio.shape[-1]:  # checked as it comes, not once a chunk is complete (an empty block is fine)
            check_samples(audio, "audio block")
        return audio

    def _encode_next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        buffer = self._buffer
        assert buffer is not None  # push and flush call this with audio buffered
        chunk_length, stride = self.model.config.chunk_sizes()
        # the model's own chunk step: the block's samples were checked as they came
        chunk = self.model._encode_chunk(buffer[..., :chunk_length], self.num_quantizers)
        self._buffer = buffer[..., stride:]
        return chunk


class ChunkedDecoder:
    """(codes [batch, n_q, frames], scale) per chunk, in order → audio, overlap-added as it becomes final."""

    def __init__(self, model: EncodecModel, precision: str = "exact"):
        if model.config.chunk_length is None:
            raise ValueError("ChunkedDecoder needs a chunked model; stream unchunked models with StreamingDecoder")
        self.model, self.precision = model, precision
        self.reset()

    def reset(self) -> None:
        self._overlap: _Overlap | None = None  # none before the first chunk

    def push(self, codes: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
        """Decode one chunk; returns the audio before the next chunk's start (stride samples)."""
        return self.add(self.model.decode_chunk(codes, scale, precision=self.precision))

    def add(self, audio: torch.Tensor) -> torch.Tensor:
        """Overlap-add one decoded chunk (for callers that decode chunks their own way, e.g. with
        lost tokens); returns the audio before the next chunk's start."""
        length = audio.shape[-1]
        overlap = self._overlap
        if overlap is not None and (audio.shape[:-1] != overlap.audio.shape[:-1] or length > len(overlap.weight)):
            raise ValueError(f"chunk of shape {tuple(audio.shape)} after chunks of {tuple(overlap.audio.shape[:-1])} "
                             f"and at most {len(overlap.weight)} samples; call reset() to start another stream")
        if overlap is None:
            device, dtype = audio.device, audio.dtype
            overlap = self._overlap = _Overlap(crossfade_weight(length, audio),
                                               torch.zeros(*audio.shape[:-1], 0, device=device, dtype=dtype),
                                               torch.zeros(0, device=device, dtype=dtype))
        overlap.extend(length)
        overlap.audio[..., :length] += overlap.weight[:length] * audio
        overlap.weight_sum[:length] += overlap.weight[:length]
        return overlap.release(min(self.model.config.chunk_sizes()[1], overlap.audio.shape[-1]))

    def flush(self) -> torch.Tensor:
        """The audio after the last chunk's start."""
        if self._overlap is None:  # nothing pushed: no audio, shaped as StreamingDecoder gives it
            embed = self.model.quantizer.codebooks()[0].embed
            return embed.new_zeros(0, self.model.config.audio_channels, 0)
        audio = self._overlap.release(self._overlap.audio.shape[-1])
        self.reset()
        return audio


@dataclass
class _Overlap:
    """A `ChunkedDecoder`'s state once a chunk came: the cross-fade (shaped by the first chunk), the
    weighted audio from the current chunk's start on, and the sum of its weights."""

    weight: torch.Tensor
    audio: torch.Tensor  # weighted
    weight_sum: torch.Tensor

    def extend(self, length: int) -> None:
        missing = length - self.audio.shape[-1]
        if missing > 0:
            self.audio = torch.cat([self.audio, self.audio.new_zeros(*self.audio.shape[:-1], missing)], dim=-1)
            self.weight_sum = torch.cat([self.weight_sum, self.weight_sum.new_zeros(missing)])

    def release(self, count: int) -> torch.Tensor:
        final = self.audio[..., :count] / self.weight_sum[:count]
        self.audio, self.weight_sum = self.audio[..., count:], self.weight_sum[count:]
        return final
