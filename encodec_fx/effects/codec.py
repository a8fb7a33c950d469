"""Codec effects: EnCodec as stages of an effect chain.

`EncodecCompressor` is the neural sibling of `pedalboard.MP3Compressor` (audio in, coded and
decoded audio out). `EncodecEncoder` and `EncodecDecoder` split it in two so token effects can
run on the `Codes` in between. Any sample rate, layout and channel count is accepted: audio is
resampled to the model's rate and back (see `resample`), channels are mapped as `channels` says,
and the output has the input's rate, length and layout. In a stream (`reset=False`) the encoder
gives a `Codes` block per audio block and the decoder, fed those blocks in order, gives the audio
`latency` samples behind (see `codec_stream`). `frames_per_step` sets how many code frames a
stream computes at once; the default (None) is the most that adds no latency, 7 frames for the
24 kHz model, several times faster than 1 (see `codec_stream`). Set 1 to spread the work evenly
over the blocks, as a live audio callback with a tight deadline needs. It is read when a stream
starts, and an encoder and its decoder need the same. `device` loads the model onto a GPU
("cuda"); audio and codes still go in and come out as numpy arrays. `precision` sets how precisely
the decoding effects decode (`encodec_fx.precision`): by default (None) the fastest mode within
35 dB SNR of "exact" that the hardware runs natively ("bfloat16" on a CPU with AVX-512-BF16 or
AMX and on a GPU, else "exact"); the codes are always the exact encoder's.
"""

from __future__ import annotations

import numpy as np
import torch

from ..channels import from_model_channels, to_model_channels
from ..devices import resolve_device
from ..model import EncodecModel
from ..partial_decode import decode_received
from ..precision import check_precision, effect_precision
from ..resample import resample
from ..stream import CodeBlock, check_step, default_frames_per_step
from ..streaming import why_not_streamable
from .codec_stream import DecoderStream, EncoderStream, caller_rate_latency
from .codes import Codes
from .layout import AudioLayout, read_array, read_block, stream_layout
from .model_source import ModelSource, load_effect_model, source_of
from .protocol import AUDIO, CODES, Effect, check_sample_rate

STREAMED_FROM_SECONDS = 20.0
"""A model that can stream (the causal 24 kHz one) codes a longer signal through its streaming
codec, which works a few frames at a time, rather than whole: the codes are the same and the audio
within float rounding, but the whole signal's activations at every layer take memory in proportion
to its length (a minute of 24 kHz stereo, shipped model: peak RSS 1.29 GB whole, 0.48 GB streamed,
and 5.35 s against 3.14 s for encode and decode, two threads, Intel VM, 2026-12-02)."""


def streams_whole_signal(model: EncodecModel, num_samples: int) -> bool:
    config = model.config
    return why_not_streamable(config) is None and num_samples > STREAMED_FROM_SECONDS * config.sampling_rate


def encode_audio(model: EncodecModel, input_array: np.ndarray, sample_rate: int, bandwidth: float) -> Codes:
    """Audio in the caller's layout and rate → `Codes` at `bandwidth` kbps."""
    audio, layout = read_array(input_array)
    config = model.config
    at_model_rate = resample(audio, sample_rate, config.sampling_rate)
    batch = torch.from_numpy(to_model_channels(at_model_rate, config))
    with torch.inference_mode():
        if streams_whole_signal(model, batch.shape[-1]):
            encoder = model.stream_encoder(bandwidth)
            codes, scales, pad_length = CodeBlock.join([encoder.push(batch), encoder.flush()]).rows[0][None], [None], 0
        else:
            codes, scales, pad_length = model.encode(batch, bandwidth=bandwidth)
    audio_codes = codes.cpu().numpy().astype(np.int64)
    audio_scales = None if scales[0] is None else torch.cat(scales, dim=1).T.cpu().numpy().astype(np.float32)
    return Codes(audio_codes=audio_codes, received=np.ones(audio_codes.shape, dtype=bool),
                 audio_scales=audio_scales, last_frame_pad_length=int(pad_length), config=config,
                 sample_rate=sample_rate, layout=layout, model_num_samples=at_model_rate.shape[-1])


def check_decodable(model: EncodecModel, codes: Codes, sample_rate: int, streaming: bool) -> None:
    """Codes this decoder can decode: from its model, at the rate encoded, a whole signal's or a stream's."""
    if not isinstance(codes, Codes):
        raise TypeError(f"expected Codes from an EncodecEncoder, got {type(codes).__name__}")
    if codes.config != model.config:
        raise ValueError("these codes were made by a model with another configuration than this decoder's; "
                         "decode with the encoder's model")
    if sample_rate != codes.sample_rate:
        raise ValueError(f"sample_rate is {sample_rate} Hz, but the codes were encoded from {codes.sample_rate} Hz "
                         "audio; decode at the rate they were encoded from")
    if streaming and codes.first_frame is None:
        raise ValueError("these codes are a whole signal's (encoded with reset=True); decode them with reset=True")
    if not streaming and codes.first_frame is not None:
        raise ValueError("these codes are a block of a stream (encoded with reset=False); decode them with reset=False")


def decode_to_audio(model: EncodecModel, codes: Codes, sample_rate: int, precision: str = "exact") -> np.ndarray:
    """`Codes` → float32 audio with the encoder input's rate, length and layout."""
    check_decodable(model, codes, sample_rate, streaming=False)
    device = model.device
    audio_codes = torch.from_numpy(codes.audio_codes).to(device)
    scales: list[torch.Tensor | None] = [None] * audio_codes.shape[0] if codes.audio_scales is None else \
        [torch.from_numpy(row).to(device) for row in codes.audio_scales]
    with torch.inference_mode():
        if codes.received.all() and streams_whole_signal(model, codes.model_num_samples):
            decoder = model.stream_decoder(precision)
            block = CodeBlock((audio_codes[0],), None, chunked=False, batch=audio_codes.shape[1])
            audio = torch.cat([decoder.push(block), decoder.flush()], dim=-1)[..., : codes.model_num_samples]
        elif codes.received.all():
            mask = torch.ones(codes.model_num_samples, device=device)
            audio = model.decode(audio_codes, scales, mask, last_frame_pad_length=codes.last_frame_pad_length,
                                 precision=precision)[0]
        else:
            received = torch.from_numpy(codes.received).to(device)
            audio = decode_received(model, audio_codes, received, scales, codes.last_frame_pad_length,
                                    codes.model_num_samples, precision)
    channels = from_model_channels(audio.float().cpu().numpy(), codes.layout.num_channels)
    return codes.layout.restore(resample(channels, model.config.sampling_rate, sample_rate, codes.layout.num_samples))


class _CodecEffect(Effect):
    """An effect running an EnCodec model, given as a model object or a `from_pretrained` source."""

    def __init__(self, model: ModelSource | None = None, frames_per_step: int | None = None,
                 device: str | torch.device | None = None, precision: str | None = None):
        self.device = None if device is None else resolve_device(device)  # where a loaded model goes
        self._frames_per_step: int | None = None
        self.model = model
        self.frames_per_step = frames_per_step
        self.precision = precision

    @property
    def precision(self) -> str | None:
        return self._precision

    @precision.setter
    def precision(self, precision: str | None) -> None:
        """Checked when set; read when a decoding stream starts (None: `decoding_precision`)."""
        self._precision = None if precision is None else check_precision(precision)

    @property
    def decoding_precision(self) -> str:
        """The precision the audio is decoded at: `precision`, or for None the fastest within 35 dB SNR of
        exact that runs natively on the model's device (`encodec_fx.precision.effect_precision`)."""
        return self._precision or effect_precision(self.model.device)

    @property
    def frames_per_step(self) -> int | None:
        return self._frames_per_step

    @frames_per_step.setter
    def frames_per_step(self, frames_per_step: int | None) -> None:
        """Checked when set (and when the model changes): the streams trust it."""
        if frames_per_step is not None:
            check_step(self.model, frames_per_step)
        self._frames_per_step = frames_per_step

    @property
    def model(self) -> EncodecModel:
        return self._model

    @model.setter
    def model(self, source: ModelSource | None) -> None:
        model = load_effect_model(source, type(self).__name__, self.device)
        if self._frames_per_step is not None:
            check_step(model, self._frames_per_step)
        self._model = model
        self._latencies: dict[tuple[int, int], int] = {}  # by (sample rate, frames per step)
        self._default_step: int | None = None  # default_frames_per_step of this model, once asked
        self.reset()  # a stream's state belongs to the model that made it

    def __getstate__(self) -> dict:
        """Settings and the model's source, not its weights when it was named (a worker loads it once);
        a stream in progress does not travel. The precision travels resolved, so that a worker decodes as
        the caller would."""
        state = {name: value for name, value in self.__dict__.items()
                 if name not in ("_model", "_encoding", "_decoding", "_latencies", "_default_step")}
        decoding = {"_precision": self.decoding_precision} if self.output_kind == AUDIO else {}
        return state | {"model_source": source_of(self._model)} | decoding

    def __setstate__(self, state: dict) -> None:
        source = state.pop("model_source")
        self.__dict__.update(state)
        self.model = source

    @property
    def default_rate(self) -> int:
        return self.model.config.sampling_rate

    def _clear_stream(self) -> None:
        self._encoding: EncoderStream | None = None
        self._decoding: DecoderStream | None = None

    def _encode_block(self, signal: np.ndarray, sample_rate: int, bandwidth: float) -> Codes:
        if self._encoding is None:
            self._encoding = EncoderStream(self.model, sample_rate, stream_layout(signal), self._step(), bandwidth)
        audio, block_layout = read_block(signal, self._encoding.layout)
        return self._encoding.push(audio, block_layout, bandwidth)

    def _decode_block(self, codes: Codes, sample_rate: int) -> np.ndarray:
        check_decodable(self.model, codes, sample_rate, streaming=True)
        if self._decoding is None:
            self._decoding = DecoderStream(self.model, sample_rate, codes.layout.num_channels,
                                           self._decoding_latency(sample_rate), self.decoding_precision)
        audio = self._decoding.push(codes)
        layout = codes.layout
        return AudioLayout(layout.num_channels, audio.shape[-1], layout.ndim, layout.channels_first).restore(audio)

    def _model_repr(self) -> str:
        step = "" if self.frames_per_step is None else f", frames_per_step={self.frames_per_step!r}"
        device = "" if self.device is None else f", device={str(self.device)!r}"
        precision = "" if self.precision is None else f", precision={self.precision!r}"
        return f"model=<{self.model.config.sampling_rate} Hz EnCodec>{step}{device}{precision}"

    def _step(self) -> int:
        """The frames a stream codes at once: `frames_per_step`, or the model's default for None."""
        if self.frames_per_step is not None:
            return self.frames_per_step
        if self._default_step is None:
            self._default_step = default_frames_per_step(self.model)
        return self._default_step

    def _decoding_latency(self, sample_rate: int) -> int:
        key = check_sample_rate(sample_rate), self._step()
        if key not in self._latencies:
            self._latencies[key] = caller_rate_latency(self.model, *key)
        return self._latencies[key]


class EncodecCompressor(_CodecEffect):
    """Audio → EnCodec at `bandwidth` kbps → audio: hear what the codec does to a signal."""

    def __init__(self, bandwidth: float = 6.0, model: ModelSource | None = None, frames_per_step: int | None = None,
                 device: str | torch.device | None = None, precision: str | None = None):
        super().__init__(model, frames_per_step, device, precision)
        # checked now, not when audio comes (and again then: it may change)
        self.model.num_quantizers_for_bandwidth(bandwidth)
        self.bandwidth = bandwidth

    def _process(self, signal: np.ndarray, sample_rate: int, buffer_size: int) -> np.ndarray:
        codes = encode_audio(self.model, signal, sample_rate, self.bandwidth)
        return decode_to_audio(self.model, codes, sample_rate, self.decoding_precision)

    def _stream(self, signal: np.ndarray, sample_rate: int, buffer_size: int) -> np.ndarray:
        return self._decode_block(self._encode_block(signal, sample_rate, self.bandwidth), sample_rate)

    def latency_at(self, sample_rate: int) -> int:
        return self._decoding_latency(sample_rate)

    def __repr__(self) -> str:
        return f"EncodecCompressor(bandwidth={self.bandwidth!r}, {self._model_repr()})"


class EncodecEncoder(_CodecEffect):
    """Audio → `Codes` at `bandwidth` kbps (one of the model's target bandwidths). In a stream each
    block gives the codes of the frames it completes; the decoder accounts for the whole latency."""

    output_kind = CODES

    def __init__(self, bandwidth: float = 6.0, model: ModelSource | None = None, frames_per_step: int | None = None,
                 device: str | torch.device | None = None):
        super().__init__(model, frames_per_step, device)
        # checked now, not when audio comes (and again then: it may change)
        self.model.num_quantizers_for_bandwidth(bandwidth)
        self.bandwidth = bandwidth

    def _process(self, signal: np.ndarray, sample_rate: int, buffer_size: int) -> Codes:
        return encode_audio(self.model, signal, sample_rate, self.bandwidth)

    def _stream(self, signal: np.ndarray, sample_rate: int, buffer_size: int) -> Codes:
        return self._encode_block(signal, sample_rate, self.bandwidth)

    def __repr__(self) -> str:
        return f"EncodecEncoder(bandwidth={self.bandwidth!r}, {self._model_repr()})"


class EncodecDecoder(_CodecEffect):
    """`Codes` → audio shaped like the encoder's input; needs the encoder's model (and, in a stream,
    its `frames_per_step`). In a stream its `latency` is the whole encoder → decoder path's."""

    input_kind = CODES
    output_kind = AUDIO

    def _process(self, signal: Codes, sample_rate: int, buffer_size: int) -> np.ndarray:
        return decode_to_audio(self.model, signal, sample_rate, self.decoding_precision)

    def _stream(self, signal: Codes, sample_rate: int, buffer_size: int) -> np.ndarray:
        return self._decode_block(signal, sample_rate)

    def latency_at(self, sample_rate: int) -> int:
        return self._decoding_latency(sample_rate)

    def __repr__(self) -> str:
        return f"EncodecDecoder({self._model_repr()})"
