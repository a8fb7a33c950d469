"""Stateful streaming encoder and decoder for the causal EnCodec model, matching the offline path.

Every layer keeps what it needs of the past (convolution context, LSTM (h, c), transposed-convolution
partial sums), so each block is computed once, whatever its size. The result is that of
`EncodecModel.encode`/`decode` up to float rounding (the sums are grouped by block, so embeddings and
audio differ in the last bits, about 1e-7; codes come out the same unless two codewords tie that
closely). The two ends of the stream need care:

* start: a causal convolution reflect-pads the left with samples 1..pad of its input, so it waits
  for pad + 1 samples before its first output. The first code frames therefore come out together,
  once about `kernel_size` frames of audio are in (the last encoder convolution pads by 6 frames),
  and so does the decoder's first audio;
* end: a strided convolution reflect-pads the right up to a whole stride, so each one holds back
  its last partial stride and computes it at `flush`, when the stream's length is known.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from entropy.number_checks import is_integer

from .config import EncodecConfig
from .precision import dtype_of
from .streaming_layers import StreamingLayers
from .validation import check_codes, check_samples

if TYPE_CHECKING:  # the model builds on this module (`model.stream_encoder`)
    from .model import EncodecModel

# Code frames (or their audio, at the encoder) that go through the layers in one pass; longer pushes
# are split. A pass holds every layer's intermediate tensors, about 0.5 MB a frame per stream with 16
# filters: 5 s in one pass peaked 200 MB higher than in 1/3 s passes, which were no slower.
PASS_FRAMES = 25


def round_trip_latency(model: EncodecModel, frames_per_step: int = 1) -> int:
    """Samples by which the streamed encoder → decoder output lags its input, at worst: the delay a
    player needs so that its audio never runs dry, pushing one sample at a time.

    The worst is at the start, where the convolutions' reflect padding holds the first output back
    until about `kernel_size` frames are in (2239 samples for the 24 kHz model). Once running, the
    lag is at most hop_length - 1: a code frame is complete when its last sample is in, and the
    decoder turns it into audio at once (its transposed convolutions look only backwards). A stream
    that codes `frames_per_step` frames at a time (input cut to whole steps) lags up to a step less
    one sample once running.
    """
    check_streamable(model.config)
    check_frames_per_step(frames_per_step)
    return latency_of_checked(model, frames_per_step)


def latency_of_checked(model: EncodecModel, frames_per_step: int) -> int:
    """`round_trip_latency` for a streamable model and a step already checked."""
    encoder, decoder = StreamingLayers(model.encoder.layers), StreamingLayers(model.decoder.layers)
    step, latency, pushed = frames_per_step * model.config.hop_length, 0, 0
    while True:  # a step at a time: within one the output waits, so the lag peaks at its last sample
        output_length = decoder.output_length(encoder.output_length(pushed))
        latency = max(latency, pushed + step - 1 - output_length)
        if output_length:  # every layer has started: lags repeat every step from here
            return latency
        pushed += step


def check_frames_per_step(frames_per_step: int) -> None:
    """Frames coded together in a stream: a positive integer (numpy's too)."""
    if not is_integer(frames_per_step) or frames_per_step < 1:
        raise ValueError(f"frames_per_step must be a positive integer, got {frames_per_step!r}")


def check_streamable(config: EncodecConfig) -> None:
    """Reject models whose output depends on the whole input, so cannot be computed block by block."""
    reason = why_not_streamable(config)
    if reason is not None:
        raise ValueError(reason)


def why_not_streamable(config: EncodecConfig) -> str | None:
    """Why a model cannot be coded block by block, or None if it can."""
    if not config.use_causal_conv:
        return ("streaming needs a causal model (config.use_causal_conv=True, e.g. the 24 kHz model); "
                "a non-causal model such as the 48 kHz one pads on both sides and can only be "
                "coded chunk by chunk")
    if config.chunk_length is not None:
        return ("streaming needs a model that codes its input as one chunk (chunk_length_s=None); "
                f"this one cuts it into {config.chunk_length_s} s chunks")
    if config.normalize:
        return ("streaming needs a model without input normalisation (normalize=False): "
                "its scale is the loudness of the whole input")
    if config.norm_type != "weight_norm":
        return (f"streaming needs weight-normed convolutions; norm_type {config.norm_type!r} "
                "normalises over the whole time axis")
    if config.trim_right_ratio != 1.0:
        return ("streaming needs the transposed convolutions trimmed on the right only "
                f"(trim_right_ratio=1.0, got {config.trim_right_ratio}), so that no output "
                "waits for later frames")
    return None


# --- encoder and decoder -------------------------------------------------------------------------


class StreamingEncoder:
    """Audio blocks of any size in, code frames out as soon as they are complete.

    The codes of all `push` calls followed by `flush` are those of `model.encode` on the whole
    input: `flush` pads the end as the offline path does. Convolution and LSTM weights are read at
    construction: make a new one after changing the model's weights."""

    def __init__(self, model: EncodecModel, bandwidth: float | None = None, frames_per_step: int = 1):
        check_streamable(model.config)
        check_frames_per_step(frames_per_step)
        self._build(model, model.num_quantizers_for_bandwidth(bandwidth), frames_per_step)

    @classmethod
    def of_checked(cls, model: EncodecModel, num_quantizers: int, frames_per_step: int) -> StreamingEncoder:
        """For a caller that has checked the model, resolved the bandwidth and checked the step
        (`model.stream_encoder`): nothing is checked twice."""
        encoder = cls.__new__(cls)
        encoder._build(model, num_quantizers, frames_per_step)
        return encoder

    def _build(self, model: EncodecModel, num_quantizers: int, frames_per_step: int) -> None:
        self.config = model.config
        self.num_quantizers = num_quantizers
        self.quantizer = model.quantizer
        self.layers = StreamingLayers(model.encoder.layers)
        self.device, self.dtype = model.device, model.quantizer.codebooks()[0].embed.dtype
        self.step = frames_per_step * self.config.hop_length  # samples coded together
        self.reset()

    def reset(self) -> None:
        """Forget the stream so far and start a new one."""
        self.layers.reset()
        self.empty_block: torch.Tensor | None = None  # the stream's shape, zero samples long
        self.waiting: torch.Tensor | None = None  # audio short of a whole step, not yet coded

    @torch.no_grad()
    def push(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio (batch, channels, samples) → codes (batch, n_q, frames) of the frames it completes."""
        audio = self._whole_steps(self._check_audio(audio))
        if not audio.shape[-1]:  # no whole step yet: every layer would pass on nothing
            return torch.zeros(audio.shape[0], self.num_quantizers, 0, dtype=torch.long, device=self.device)
        return self._quantize(self.layers.push_in_passes(audio, PASS_FRAMES * self.config.hop_length))

    @torch.no_grad()
    def flush(self) -> torch.Tensor:
        """Codes of the frames left, the last one padded as `model.encode` pads it; then reset."""
        if self.empty_block is None:  # nothing pushed
            return torch.zeros(0, self.num_quantizers, 0, dtype=torch.long, device=self.device)
        assert self.waiting is not None  # set with empty_block
        waiting = self._quantize(self.layers.push_in_passes(self.waiting, PASS_FRAMES * self.config.hop_length))
        codes = torch.cat([waiting, self._quantize(self.layers.finish(self.empty_block))], dim=-1)
        self.reset()
        return codes

    def _whole_steps(self, audio: torch.Tensor) -> torch.Tensor:
        """The audio received so far cut to whole steps; the rest waits. A frame completes only at a
        multiple of the hop (checked by the tests), so a one-hop step delays nothing, and it saves running
        every layer on blocks too short to complete a frame."""
        assert self.waiting is not None  # set by _check_audio
        audio = torch.cat([self.waiting, audio], dim=-1)
        usable = audio.shape[-1] - audio.shape[-1] % self.step
        self.waiting = audio[..., usable:]
        return audio[..., :usable]

    def _quantize(self, embeddings: torch.Tensor) -> torch.Tensor:
        # a contiguous time-major copy: the offline path's view is slow for the few frames of a block
        return self.quantizer.encode_frames(embeddings.transpose(1, 2).contiguous(), self.num_quantizers)

    def _check_audio(self, audio: torch.Tensor) -> torch.Tensor:
        channels = self.config.audio_channels
        if not isinstance(audio, torch.Tensor) or audio.dim() != 3 or audio.shape[1] != channels:
            shape = tuple(audio.shape) if isinstance(audio, torch.Tensor) else type(audio).__name__
            raise ValueError(f"audio block is {shape}; expected a tensor (batch, {channels}, samples)")
        if audio.shape[-1]:
            check_samples(audio, "audio block")
        if self.empty_block is not None and audio.shape[0] != self.empty_block.shape[0]:
            raise ValueError(f"audio block has batch {audio.shape[0]}, but this stream has batch "
                             f"{self.empty_block.shape[0]}; call reset() to start another stream")
        audio = audio.to(device=self.device, dtype=self.dtype)
        if self.empty_block is None:
            self.empty_block = self.waiting = audio[..., :0]
        return audio


class StreamingDecoder:
    """Code frames in, audio out: each frame's hop_length samples as soon as the frame is in.

    Only the start waits: the first convolution reflect-pads its left, so audio begins once
    `kernel_size` frames are in. The audio of all `push` calls followed by `flush` is that of
    `model.decode` on all the codes. The number of codebooks may change from block to block.
    Convolution and LSTM weights are read at construction: make a new one after changing the
    model's weights. `precision` (`encodec_fx.precision`) lowers the precision of its layers for speed."""

    def __init__(self, model: EncodecModel, precision: str = "exact"):
        check_streamable(model.config)
        self.config = model.config
        self.quantizer = model.quantizer
        self.device = model.device
        self.dtype = dtype_of(precision)
        self.layers = StreamingLayers(model.decoder.layers, None if precision == "exact" else self.dtype)
        self.reset()

    def reset(self) -> None:
        """Forget the stream so far and start a new one."""
        self.layers.reset()
        self.empty_embeddings: torch.Tensor | None = None  # the stream's shape, zero frames long

    @torch.no_grad()
    def push(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (batch, n_q, frames) → the audio (batch, channels, samples) they complete."""
        codes = self._check_codes(codes)
        return self.push_embeddings(self.quantizer.decode(codes.to(self.device)))

    @torch.no_grad()
    def push_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Quantised embeddings (batch, dimension, frames), e.g. of partly received codes → the audio they complete."""
        if self.empty_embeddings is None:
            self.empty_embeddings = embeddings[..., :0]
        return self.layers.push_in_passes(embeddings.to(self.dtype), PASS_FRAMES).to(embeddings.dtype)

    @torch.no_grad()
    def flush(self) -> torch.Tensor:
        """The audio left (only for a stream too short to have started); then reset."""
        if self.empty_embeddings is None:  # nothing pushed
            embed = self.quantizer.codebooks()[0].embed
            return embed.new_zeros(0, self.config.audio_channels, 0)
        audio = self.layers.finish(self.empty_embeddings.to(self.dtype)).to(self.empty_embeddings.dtype)
        self.reset()
        return audio

    def _check_codes(self, codes: torch.Tensor) -> torch.Tensor:
        codes = check_codes(codes, "codes block", "(batch, n_q, frames)", len(self.quantizer.layers),
                            self.config.codebook_size, frames_needed=False)
        if self.empty_embeddings is not None and codes.shape[0] != self.empty_embeddings.shape[0]:
            raise ValueError(f"codes block has batch {codes.shape[0]}, but this stream has batch "
                             f"{self.empty_embeddings.shape[0]}; call reset() to start another stream")
        return codes
