"""`Codes`: what travels between an `EncodecEncoder` and an `EncodecDecoder`.

Besides the tokens it carries everything the decoder needs to give back audio shaped like the
encoder's input (rate, channels, length, layout) and to refuse codes from another model, so token
effects in between can be written without knowing where the codes came from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..config import EncodecConfig
from .layout import AudioLayout


@dataclass(frozen=True, eq=False)
class Codes:
    """EnCodec tokens of one signal, with its provenance.

    `audio_codes` int64 [chunks, streams, n_q, frames], as `EncodecModel.encode` returns them (one
    stream per coded batch item: one per channel for a mono model, one for a stereo model).
    `received` (same shape, bool) marks the tokens that reached the decoder: a token not received
    adds nothing to its frame's embedding (lost packets, reduced bandwidth over time).
    `audio_scales` float32 [chunks, streams] for normalising models, else None.
    `last_frame_pad_length` code frames of padding at the end of the last chunk.
    `config` identifies the model; `sample_rate` and `layout` describe the encoder's input, and
    `model_num_samples` its length at the model's rate.
    `first_frame` is None for the codes of a whole signal (batch). In a stream each block of codes
    holds the frames its audio block completed (whole chunks for a chunked model, no padding), and
    `first_frame` is the index of its first frame on the stream's timeline: token effects use it as
    the stream time, and the decoder to check that no block went missing.
    """

    audio_codes: np.ndarray
    received: np.ndarray
    audio_scales: np.ndarray | None
    last_frame_pad_length: int
    config: EncodecConfig
    sample_rate: int
    layout: AudioLayout
    model_num_samples: int
    first_frame: int | None = None

    def __post_init__(self) -> None:
        codes, size = self.audio_codes, self.config.codebook_size
        if not isinstance(codes, np.ndarray) or codes.ndim != 4 or not np.issubdtype(codes.dtype, np.integer):
            raise ValueError("audio_codes must be an integer numpy array [chunks, streams, n_q, frames]")
        if codes.size and (codes.min() < 0 or codes.max() >= size):
            raise ValueError(f"audio_codes holds indices from {codes.min()} to {codes.max()}; expected 0 to {size - 1}")
        received = self.received
        if not isinstance(received, np.ndarray) or received.dtype != bool or received.shape != codes.shape:
            raise ValueError(f"received must be a bool array of the codes' shape {codes.shape}")
        if self.audio_scales is not None and self.audio_scales.shape != codes.shape[:2]:
            raise ValueError(f"audio_scales has shape {self.audio_scales.shape}; expected {codes.shape[:2]}")
        if not 0 <= self.last_frame_pad_length < max(1, codes.shape[-1]):
            raise ValueError(f"last_frame_pad_length {self.last_frame_pad_length} does not fit "
                             f"{codes.shape[-1]} frames per chunk")

    # --- derived quantities --------------------------------------------------------------------

    @property
    def num_codebooks(self) -> int:
        return self.audio_codes.shape[2]

    @property
    def frame_rate(self) -> int:
        """Code frames per second of audio."""
        return self.config.frame_rate

    @property
    def bandwidth(self) -> float:
        """Nominal bit rate in kbps of `num_codebooks` codebooks (before losses)."""
        return self.num_codebooks * self.config.frame_rate * self.config.codebook_nbits / 1000

    @property
    def num_frames(self) -> int:
        """Frames actually transmitted: every chunk's frames, without the last chunk's padding."""
        chunks, _, _, frames = self.audio_codes.shape
        return chunks * frames - self.last_frame_pad_length

    # --- the transmission timeline: chunk after chunk, frame after frame -----------------------

    def on_timeline(self, array: np.ndarray) -> np.ndarray:
        """[chunks, streams, n_q, frames] → [streams, n_q, num_frames], in transmission order."""
        chunks, streams, n_q, frames = array.shape
        return array.transpose(1, 2, 0, 3).reshape(streams, n_q, chunks * frames)[..., : self.num_frames]

    def frame_indices(self) -> np.ndarray:
        """Index of each frame on the stream's timeline (from 0 for the codes of a whole signal)."""
        return (self.first_frame or 0) + np.arange(self.num_frames)

    def frame_times(self) -> np.ndarray:
        """Start time in seconds of each frame on the timeline (chunks overlap in chunked models)."""
        config, indices = self.config, self.frame_indices()
        if config.frames_per_chunk is None:  # unchunked
            return indices * config.hop_length / config.sampling_rate
        chunks, frames = np.divmod(indices, config.frames_per_chunk)
        return (chunks * config.chunk_stride + frames * config.hop_length) / config.sampling_rate

    def with_timeline(self, audio_codes: np.ndarray, received: np.ndarray) -> Codes:
        """A copy holding tokens given on the timeline [streams, n_q, num_frames]."""
        chunks, _, _, frames = self.audio_codes.shape
        streams, n_q, _ = audio_codes.shape
        padding = [(0, 0), (0, 0), (0, self.last_frame_pad_length)]
        codes = np.pad(audio_codes, padding).reshape(streams, n_q, chunks, frames).transpose(2, 0, 1, 3)
        mask = np.pad(received, padding).reshape(streams, n_q, chunks, frames).transpose(2, 0, 1, 3)
        return dataclasses.replace(self, audio_codes=np.ascontiguousarray(codes), received=np.ascontiguousarray(mask))
