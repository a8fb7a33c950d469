"""The codec effects' streaming mode: audio blocks → `Codes` blocks → audio blocks.

A causal model (24 kHz) runs `StreamingEncoder` and the streaming decoder layers: every block is
computed once, nothing of the past is recomputed. A chunked model (48 kHz) codes each 1 s chunk as
soon as it is complete (`ChunkedEncoder`/`ChunkedDecoder`), about one chunk of latency. Either way
the audio is resampled to the model's rate and back by `StreamingResampler`, the batch filter run
as a stream, so the result is the batch result. The decoder returns exactly as many samples as the
stream has taken in, less the latency, so the latency is constant (pedalboard's convention).

`frames_per_step` sets how many frames the causal model codes at once. A one-frame step costs
several times a frame's share of a batch call (every step reads all the weights; on a CPU that
dominates), so k frames together are several times faster per frame. The latency does not grow
as long as k divides the frames the stream's start waits for anyway (7 for the 24 kHz model:
`default_frames_per_step`); beyond, it grows by up to a step. The price is an uneven load: the
call that completes a step computes all of its frames, while the others only buffer.
"""

from __future__ import annotations

import numpy as np
import torch

from ..channels import from_model_channels, to_model_channels
from ..chunked import ChunkedDecoder, ChunkedEncoder
from ..model import EncodecModel
from ..streaming import StreamingEncoder, check_frames_per_step, round_trip_latency
from ..streaming_layers import StreamingLayers
from .codes import Codes
from .layout import AudioLayout
from .partial_decode import decode_chunk_received, received_embeddings
from .stream_resample import StreamingResampler


def stream_latency(model: EncodecModel, sample_rate: int, frames_per_step: int = 1) -> int:
    """Samples at `sample_rate` that encoding then decoding a stream withholds, at most.

    Resampling in withholds r_in model-rate samples, the codec at most c (the causal model's
    `round_trip_latency`, a chunk less one sample for a chunked model), resampling out r_out
    samples; in the caller's samples that is at most ceil((r_in + c) · rate / model_rate) + r_out.
    """
    config = model.config
    check_step(model, frames_per_step)
    into = StreamingResampler(sample_rate, config.sampling_rate)
    out_of = StreamingResampler(config.sampling_rate, sample_rate)
    codec = round_trip_latency(model, frames_per_step) if config.chunk_length is None else config.chunk_length - 1
    return -(-(into.latency + codec) * sample_rate // config.sampling_rate) + out_of.latency


def default_frames_per_step(model: EncodecModel) -> int:
    """The largest step that adds no latency: the frames a causal stream's first output waits for
    (7 for the 24 kHz model). 1 for a chunked model, which steps by whole chunks."""
    if model.config.chunk_length is not None:
        return 1
    latency = round_trip_latency(model)
    start_frames = (latency + 1) // model.config.hop_length
    return start_frames if round_trip_latency(model, start_frames) == latency else 1


def check_step(model: EncodecModel, frames_per_step: int) -> None:
    """A positive integer; above 1 only for the causal model (a chunked one steps by whole chunks)."""
    check_frames_per_step(frames_per_step)
    if frames_per_step > 1 and model.config.chunk_length is not None:
        raise ValueError(f"frames_per_step={frames_per_step}: this model streams by whole "
                         f"{model.config.chunk_length_s:g} s chunks; frames_per_step applies to a causal "
                         "model (the 24 kHz one) and must be 1 here")


class EncoderStream:
    """The caller's audio blocks → `Codes` blocks holding the frames each block completes."""

    def __init__(self, model: EncodecModel, sample_rate: int, layout: AudioLayout, frames_per_step: int = 1):
        check_step(model, frames_per_step)
        self.model, self.sample_rate, self.layout = model, sample_rate, layout
        self.step = frames_per_step * model.config.hop_length  # model-rate samples coded together
        self.resampler = StreamingResampler(sample_rate, model.config.sampling_rate)
        causal = model.config.chunk_length is None
        self.encoder = StreamingEncoder(model) if causal else ChunkedEncoder(model, None)
        self.waiting: torch.Tensor | None = None  # model-rate audio short of a whole hop, not yet pushed
        self.next_frame = 0

    def push(self, audio: np.ndarray, block_layout: AudioLayout, bandwidth: float) -> Codes:
        """(channels, samples) float32 at the caller's rate → codes of the frames it completes."""
        config = self.model.config
        num_quantizers = self.model.num_quantizers_for_bandwidth(bandwidth)
        at_model_rate = self.resampler.process(audio)
        batch = torch.from_numpy(to_model_channels(at_model_rate, config)).to(self.model.device)
        with torch.inference_mode():
            if isinstance(self.encoder, StreamingEncoder):
                self.encoder.num_quantizers = num_quantizers  # the bandwidth may change from block to block
                hops = self._whole_steps(batch)
                codes = self.encoder.push(hops)[None] if hops.shape[-1] else \
                    batch.new_zeros(1, batch.shape[0], num_quantizers, 0, dtype=torch.long)
                scales = None
            else:
                self.encoder.bandwidth = bandwidth
                chunks = self.encoder.push(batch)
                codes = torch.stack([chunk for chunk, _ in chunks]) if chunks else \
                    batch.new_zeros(0, batch.shape[0], num_quantizers, config.frames_per_chunk, dtype=torch.long)
                scales = None if not config.normalize else \
                    torch.cat([scale for _, scale in chunks], dim=1).T if chunks else batch.new_zeros(0, batch.shape[0])
        audio_codes = codes.cpu().numpy().astype(np.int64)
        block = Codes(audio_codes=audio_codes, received=np.ones(audio_codes.shape, dtype=bool),
                      audio_scales=None if scales is None else scales.cpu().numpy().astype(np.float32),
                      last_frame_pad_length=0, config=config, sample_rate=self.sample_rate, layout=block_layout,
                      model_num_samples=at_model_rate.shape[-1], first_frame=self.next_frame)
        self.next_frame += block.num_frames
        return block

    def _whole_steps(self, batch: torch.Tensor) -> torch.Tensor:
        """The audio received so far, cut to a whole number of steps; the rest waits. A frame of the
        causal encoder completes only at a multiple of the hop (checked by the tests), so a one-hop
        step delays nothing, and it saves running every layer on blocks too short to complete a frame."""
        if self.waiting is not None:
            batch = torch.cat([self.waiting, batch], dim=-1)
        usable = batch.shape[-1] - batch.shape[-1] % self.step
        self.waiting = batch[..., usable:]
        return batch[..., :usable]


class DecoderStream:
    """`Codes` blocks, in order → audio at the caller's rate, exactly `latency` samples behind the input."""

    def __init__(self, model: EncodecModel, sample_rate: int, num_channels: int, latency: int):
        self.model, self.num_channels, self.latency = model, num_channels, latency
        causal = model.config.chunk_length is None
        self.decoder = StreamingLayers(model.decoder.layers) if causal else ChunkedDecoder(model)
        self.resampler = StreamingResampler(model.config.sampling_rate, sample_rate)
        self.pending = np.zeros((num_channels, 0), dtype=np.float32)  # decoded, not yet due
        self.next_frame = self.samples_in = self.samples_out = 0

    def push(self, codes: Codes) -> np.ndarray:
        """Codes of the next block → (channels, samples) float32: the input so far less the latency."""
        if codes.first_frame != self.next_frame:
            raise ValueError(f"this codes block starts at frame {codes.first_frame}, but the stream is at frame "
                             f"{self.next_frame}: decode every block of one streaming encoder, in order")
        self.next_frame += codes.num_frames
        with torch.inference_mode():
            audio = self._decode(codes).float().cpu().numpy()
        channels = from_model_channels(audio, self.num_channels)
        self.pending = np.concatenate([self.pending, self.resampler.process(channels)], axis=-1)
        self.samples_in += codes.layout.num_samples
        due = max(0, self.samples_in - self.latency) - self.samples_out
        if due > self.pending.shape[-1]:
            raise ValueError(f"the codes arrive {due - self.pending.shape[-1]} samples later than this decoder's "
                             "latency allows: its encoder codes more frames per step; give the decoder the "
                             "encoder's frames_per_step")
        out, self.pending = self.pending[:, :due], self.pending[:, due:]
        self.samples_out += out.shape[-1]
        return out

    def _decode(self, codes: Codes) -> torch.Tensor:
        """The model-rate audio (batch, channels, samples) that these codes complete."""
        device = self.model.device
        audio_codes = torch.from_numpy(codes.audio_codes).to(device)
        received = torch.from_numpy(codes.received).to(device)
        config = self.model.config
        empty = torch.zeros(codes.audio_codes.shape[1], config.audio_channels, 0, device=device)
        if isinstance(self.decoder, StreamingLayers):
            if codes.num_frames == 0:
                return empty
            if codes.received.all():
                embeddings = self.model.quantizer.decode(audio_codes[0])
            else:
                embeddings = received_embeddings(self.model, audio_codes[0], received[0])
            return self.decoder.push(embeddings)
        decoded = [empty]
        for index in range(audio_codes.shape[0]):
            scale = None if codes.audio_scales is None else torch.from_numpy(codes.audio_scales[index]).to(device)
            if codes.received[index].all():
                decoded.append(self.decoder.push(audio_codes[index], scale))
            else:
                chunk = decode_chunk_received(self.model, audio_codes[index], received[index], scale)
                decoded.append(self.decoder.add(chunk))
        return torch.cat(decoded, dim=-1)
