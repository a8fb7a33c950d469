"""One stream interface for every EnCodec model: `model.stream_encoder(bandwidth)` and `model.stream_decoder()`.

How a model streams is decided here, once: a causal model (24 kHz) streams frame by frame, every
layer keeping its past (`streaming.StreamingEncoder`/`StreamingDecoder`); a chunked model (48 kHz)
codes each chunk as soon as it is complete and cross-fades the decoded chunks (`chunked.ChunkedEncoder`/
`ChunkedDecoder`). Callers (the effects, archives, tokenizing) see one contract:

* `encoder.push(audio)` takes (batch, channels, samples) at the model's rate, any block size, and
  returns a `CodeBlock` of the frames it completes; `encoder.flush()` ends the stream, padding the end
  as `model.encode` does, so that the blocks of a stream are the codes of the whole input;
* `decoder.push(block)` returns the audio those codes complete, `decoder.flush()` the rest;
* `encoder.latency` is how many samples the decoded audio lags the input at worst (the delay a
  player needs so that its audio never runs dry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .chunked import ChunkedDecoder, ChunkedEncoder
from .partial_decode import decode_chunk_received, received_embeddings
from .streaming import (
    StreamingDecoder,
    StreamingEncoder,
    check_frames_per_step,
    check_streamable,
    latency_of_checked,
    round_trip_latency,
)

if TYPE_CHECKING:  # the model builds on this module (`model.stream_encoder`)
    from .model import EncodecModel


@dataclass(frozen=True)
class CodeBlock:
    """Codes of a stretch of a stream, as rows of codes (batch, n_q, frames): one row of consecutive
    frames for a causal model, one row per chunk for a chunked one (`chunked`; a stream's last chunks
    are shorter; a block may hold none). `scales` are the chunks' loudness (batch,) for a normalising
    model, else None; `received` (shaped as the rows) is False where a token was lost, None when all
    arrived. `batch` is the number of streams, known also when there are no rows."""

    rows: tuple[torch.Tensor, ...]
    scales: tuple[torch.Tensor, ...] | None
    chunked: bool
    batch: int
    received: tuple[torch.Tensor, ...] | None = None

    @property
    def num_frames(self) -> int:
        return sum(row.shape[-1] for row in self.rows)

    @staticmethod
    def join(blocks: list[CodeBlock]) -> CodeBlock:
        """Consecutive blocks of one stream as one: chunks follow chunks, frames follow frames."""
        rows = tuple(row for block in blocks for row in block.rows)
        received = None if all(block.received is None for block in blocks) else \
            tuple(mask for block in blocks for mask in (block.received or [torch.ones_like(row, dtype=torch.bool)
                                                                             for row in block.rows]))
        first = blocks[0]
        scales = None if first.scales is None else tuple(scale for block in blocks for scale in block.scales or ())
        if first.chunked:
            return CodeBlock(rows, scales, True, first.batch, received)
        return CodeBlock((torch.cat(rows, dim=-1),), None, False, first.batch,
                         None if received is None else (torch.cat(received, dim=-1),))


def is_chunked(model: EncodecModel) -> bool:
    return model.config.chunk_length is not None


def default_frames_per_step(model: EncodecModel) -> int:
    """The largest step that adds no latency: the frames a causal stream's first output waits for
    (7 for the 24 kHz model). 1 for a chunked model, which steps by whole chunks."""
    if is_chunked(model):
        return 1
    latency = round_trip_latency(model)
    start_frames = (latency + 1) // model.config.hop_length
    return start_frames if latency_of_checked(model, start_frames) == latency else 1


def check_step(model: EncodecModel, frames_per_step: int) -> None:
    """A positive integer; above 1 only for the causal model (a chunked one steps by whole chunks)."""
    check_frames_per_step(frames_per_step)
    if frames_per_step > 1 and is_chunked(model):
        raise ValueError(f"frames_per_step={frames_per_step}: this model streams by whole "
                         f"{model.config.chunk_length_s:g} s chunks; frames_per_step applies to a causal "
                         "model (the 24 kHz one) and must be 1 here")


def stream_latency(model: EncodecModel, frames_per_step: int = 1) -> int:
    """Model-rate samples by which a stream's decoded audio lags its input, at worst: a causal model's
    `round_trip_latency`, a chunk less one sample for a chunked model."""
    check_step(model, frames_per_step)
    return latency_of_checked_step(model, frames_per_step)


def latency_of_checked_step(model: EncodecModel, frames_per_step: int) -> int:
    """`stream_latency` for a step already checked (`check_step`)."""
    chunk_length = model.config.chunk_length
    return chunk_length - 1 if chunk_length is not None else latency_of_checked(model, frames_per_step)


class StreamEncoder:
    """Audio blocks (batch, channels, samples) at the model's rate → `CodeBlock`s of the frames they complete.

    `frames_per_step` k > 1 (causal models) codes k frames at a time: on a CPU each pass reads all the
    weights, so k frames together cost little more than one; the input waits for whole steps.
    `bandwidth` may change between pushes (a frame's codebooks are those of the push that completes it)."""

    def __init__(self, model: EncodecModel, bandwidth: float | None = None, frames_per_step: int = 1):
        check_step(model, frames_per_step)  # the one check of each value: the encoders below trust them
        self.model, self.chunked = model, is_chunked(model)
        if not self.chunked:
            check_streamable(model.config)
        self._bandwidth, num_quantizers = bandwidth, model.num_quantizers_for_bandwidth(bandwidth)
        self._encoder = ChunkedEncoder.of_checked(model, num_quantizers) if self.chunked else \
            StreamingEncoder.of_checked(model, num_quantizers, frames_per_step)
        self.latency = latency_of_checked_step(model, frames_per_step)
        self._batch = 0  # streams in the chunked encoder's stream, for blocks that complete no chunk

    @property
    def bandwidth(self) -> float | None:
        return self._bandwidth

    @bandwidth.setter
    def bandwidth(self, bandwidth: float | None) -> None:
        """Checked on every change, and only then."""
        numbers = (int, float)
        unchanged = isinstance(bandwidth, numbers) and isinstance(self._bandwidth, numbers) \
            and bandwidth == self._bandwidth
        if not unchanged:
            self._encoder.num_quantizers = self.model.num_quantizers_for_bandwidth(bandwidth)
            self._bandwidth = bandwidth

    def reset(self) -> None:
        """Forget the stream so far and start a new one."""
        self._encoder.reset()
        self._batch = 0

    def push(self, audio: torch.Tensor) -> CodeBlock:
        """The codes of the frames that `audio` completes."""
        if isinstance(self._encoder, ChunkedEncoder):
            self._batch = audio.shape[0]
            return self._chunks(self._encoder.push(audio), audio.shape[0])
        return self._frames(self._encoder.push(audio))

    def flush(self) -> CodeBlock:
        """The codes of the frames left, the last padded as `model.encode` pads it; then reset."""
        if isinstance(self._encoder, ChunkedEncoder):
            batch, self._batch = self._batch, 0
            return self._chunks(self._encoder.flush(), batch)
        return self._frames(self._encoder.flush())

    def _frames(self, codes: torch.Tensor) -> CodeBlock:
        return CodeBlock((codes,), None, chunked=False, batch=codes.shape[0])

    def _chunks(self, chunks: list[tuple[torch.Tensor, torch.Tensor | None]], batch: int) -> CodeBlock:
        scales = tuple(scale.view(-1) for _, scale in chunks if scale is not None) if self.model.config.normalize \
            else None
        return CodeBlock(tuple(codes for codes, _ in chunks), scales, chunked=True, batch=batch)


class StreamDecoder:
    """`CodeBlock`s of one stream, in order → audio (batch, channels, samples) at the model's rate, decoded at
    `precision` (`encodec_fx.precision`)."""

    def __init__(self, model: EncodecModel, precision: str = "exact"):
        self.model, self.chunked, self.precision = model, is_chunked(model), precision
        self._decoder = ChunkedDecoder(model, precision) if self.chunked else StreamingDecoder(model, precision)

    def reset(self) -> None:
        """Forget the stream so far and start a new one."""
        self._decoder.reset()

    def push(self, block: CodeBlock) -> torch.Tensor:
        """The audio that `block` completes (lost tokens, where `received` is False, add nothing)."""
        device, channels = self.model.device, self.model.config.audio_channels
        audio = [torch.zeros(block.batch, channels, 0, device=device)]
        for index, codes in enumerate(block.rows):
            codes = codes.to(device)
            received = None if block.received is None or bool(block.received[index].all()) else \
                block.received[index].to(device)
            if isinstance(self._decoder, StreamingDecoder):
                if not codes.shape[-1]:
                    continue
                audio.append(self._decoder.push(codes) if received is None else
                             self._decoder.push_embeddings(received_embeddings(self.model, codes, received)))
                continue
            scale = None if block.scales is None else block.scales[index].to(device).view(-1, 1)
            audio.append(self._decoder.push(codes, scale) if received is None else
                         self._decoder.add(decode_chunk_received(self.model, codes, received, scale, self.precision)))
        return torch.cat(audio, dim=-1)

    def flush(self) -> torch.Tensor:
        """The audio left; then reset."""
        return self._decoder.flush()
