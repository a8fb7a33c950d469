"""The codec effects' streaming mode: audio blocks → `Codes` blocks → audio blocks.

The model's own stream (`model.stream_encoder`/`stream_decoder`, see `encodec_fx.stream`) does the
coding: frame by frame for a causal model (24 kHz), chunk by chunk for a chunked one (48 kHz, about
one chunk of latency). The audio is resampled to the model's rate and back by
`encodec_fx.resample.Resampler`, the batch filter run as a stream, so the result is the batch
result. The decoder returns exactly as many samples as the
stream has taken in, less the latency, so the latency is constant (pedalboard's convention).

`frames_per_step` sets how many frames the causal model codes at once. A one-frame step costs
several times a frame's share of a batch call (every step reads all the weights; on a CPU that
dominates), so k frames together are several times faster per frame. The latency does not grow
as long as k divides the frames the stream's start waits for anyway (7 for the 24 kHz model:
`default_frames_per_step`); beyond, it grows by up to a step. The price is an uneven load: the
call that completes a step computes all of its frames, while the others only buffer.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch

from ..channels import from_model_channels, to_model_channels
from ..model import EncodecModel
from ..resample import Resampler
from ..stream import CodeBlock, latency_of_checked_step
from .codes import Codes
from .layout import AudioLayout


def caller_rate_latency(model: EncodecModel, sample_rate: int, frames_per_step: int = 1) -> int:
    """Samples at `sample_rate` that encoding then decoding a stream withholds, at most (the step checked
    by the effect).

    Resampling in withholds r_in model-rate samples, the codec at most c (`stream.stream_latency`),
    resampling out r_out samples; in the caller's samples that is at most
    ceil((r_in + c) · rate / model_rate) + r_out.
    """
    config = model.config
    into = Resampler(sample_rate, config.sampling_rate)
    out_of = Resampler(config.sampling_rate, sample_rate)
    codec = latency_of_checked_step(model, frames_per_step)
    return -(-(into.latency + codec) * sample_rate // config.sampling_rate) + out_of.latency


class EncoderStream:
    """The caller's audio blocks → `Codes` blocks holding the frames each block completes."""

    def __init__(self, model: EncodecModel, sample_rate: int, layout: AudioLayout, frames_per_step: int,
                 bandwidth: float):
        self.model, self.sample_rate, self.layout = model, sample_rate, layout
        self.resampler = Resampler(sample_rate, model.config.sampling_rate)
        self.encoder = model.stream_encoder(bandwidth, frames_per_step)
        self.next_frame = 0

    def push(self, audio: np.ndarray, block_layout: AudioLayout, bandwidth: float) -> Codes:
        """(channels, samples) float32 at the caller's rate → codes of the frames it completes."""
        at_model_rate = self.resampler.process(audio)
        batch = torch.from_numpy(to_model_channels(at_model_rate, self.model.config)).to(self.model.device)
        with torch.inference_mode():
            self.encoder.bandwidth = bandwidth  # the bandwidth may change from block to block
            coded = self.encoder.push(batch)
        config = self.model.config
        if coded.rows:  # a causal model's run of frames, or whole chunks (a stream never flushes here)
            audio_codes = torch.stack(coded.rows).cpu().numpy().astype(np.int64)
        else:
            assert config.frames_per_chunk is not None  # no rows: a chunked model's block
            audio_codes = np.zeros((0, batch.shape[0], self.model.num_quantizers_for_bandwidth(bandwidth),
                                    config.frames_per_chunk), dtype=np.int64)
        scales = None if not config.normalize else np.zeros((0, batch.shape[0]), np.float32) if not coded.rows \
            else torch.stack(cast("tuple[torch.Tensor, ...]", coded.scales)).cpu().numpy().astype(np.float32)
        block = Codes(audio_codes=audio_codes, received=np.ones(audio_codes.shape, dtype=bool), audio_scales=scales,
                      last_frame_pad_length=0, config=config, sample_rate=self.sample_rate,
                      layout=block_layout, model_num_samples=at_model_rate.shape[-1], first_frame=self.next_frame)
        self.next_frame += block.num_frames
        return block


class DecoderStream:
    """`Codes` blocks, in order → audio at the caller's rate, exactly `latency` samples behind the input."""

    def __init__(self, model: EncodecModel, sample_rate: int, num_channels: int, latency: int,
                 precision: str = "exact"):
        self.model, self.num_channels, self.latency = model, num_channels, latency
        self.decoder = model.stream_decoder(precision)
        self.resampler = Resampler(model.config.sampling_rate, sample_rate)
        self.pending = np.zeros((num_channels, 0), dtype=np.float32)  # decoded, not yet due
        self.next_frame = self.samples_in = self.samples_out = 0

    def push(self, codes: Codes) -> np.ndarray:
        """Codes of the next block → (channels, samples) float32: the input so far less the latency."""
        if codes.first_frame != self.next_frame:
            raise ValueError(f"this codes block starts at frame {codes.first_frame}, but the stream is at frame "
                             f"{self.next_frame}: decode every block of one streaming encoder, in order")
        self.next_frame += codes.num_frames
        block = CodeBlock(tuple(torch.from_numpy(codes.audio_codes)),
                          None if codes.audio_scales is None else tuple(torch.from_numpy(codes.audio_scales)),
                          self.decoder.chunked, codes.audio_codes.shape[1], tuple(torch.from_numpy(codes.received)))
        with torch.inference_mode():
            audio = self.decoder.push(block).float().cpu().numpy()
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
