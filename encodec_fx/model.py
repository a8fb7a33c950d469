"""EncodecModel: encoder, residual vector quantiser and decoder, with the transformers API.

Shapes: audio (batch, channels, samples); codes [chunks, batch, n_q, frames]. The 24 kHz model
codes the whole input as one chunk; the 48 kHz model cuts it into 1 s chunks (stride 0.99 s),
normalises each by its loudness and overlap-adds the decoded chunks.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from entropy.number_checks import is_finite_number, is_integer

from .config import EncodecConfig
from .conv import NormConv1d
from .devices import resolve_device
from .fast_path import FastPath
from .outputs import EncodecDecoderOutput, EncodecEncoderOutput, EncodecOutput
from .overlap import overlap_add
from .precision import check_precision
from .quantizer import ResidualVectorQuantizer
from .seanet import Decoder, Encoder
from .validation import as_number, check_codes, check_samples, check_sampling_rate, check_scale, tensor_of

if TYPE_CHECKING:  # stream.py builds on this module
    from .stream import StreamDecoder, StreamEncoder


class EncodecModel(nn.Module):
    """The EnCodec neural audio codec (Défossez et al., 2022).

    `encode`/`decode` take the fast inference path (`fast_path.py`) unless `fast` is False or the
    model is training with grad enabled: codes identical to the reference modules, audio within
    about 1e-6, no autograd graph. `model.encoder`/`model.decoder` are always the reference modules.
    """

    def __init__(self, config: EncodecConfig, *, fast: bool = True):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.quantizer = ResidualVectorQuantizer(config)
        self.fast = fast
        self._fast_path: FastPath | None = None

    def _inference_path(self) -> FastPath | None:
        """The compiled layers when the fast path applies, rebuilt if a parameter changed; else None."""
        if not self.fast or (self.training and torch.is_grad_enabled()):
            return None
        self._fast_path = FastPath.for_model(self, self._fast_path)
        return self._fast_path

    def __reduce__(self) -> tuple:
        """Pickled as its config and state dict (weight-norm layers cannot be pickled as modules),
        so a model, or an effect holding one, can go to a worker process."""
        state = {key: value.detach() for key, value in self.state_dict().items()}
        return _rebuild, (self.config, state, self.fast, self.training)

    @property
    def device(self) -> torch.device:
        """Where the model computes (move it with `.to`); inputs are moved here, outputs stay here."""
        return self.quantizer.codebooks()[0].embed.device

    # --- encoding ------------------------------------------------------------------------------

    def encode(self, input_values: torch.Tensor | np.ndarray, padding_mask: torch.Tensor | None = None,
               bandwidth: float | None = None, return_dict: bool = True, *,
               sampling_rate: int | None = None) -> EncodecEncoderOutput | tuple:
        """Audio (batch, channels, samples) → codes [chunks, batch, n_q, frames].

        `bandwidth` (kbps) must be one of `config.target_bandwidths`; None takes the smallest, as in
        transformers (the original package uses all codebooks). `padding_mask` (batch, samples),
        1 for real samples, zeroes the padding. Any length works: no padding is needed.
        """
        n_q = self.num_quantizers_for_bandwidth(bandwidth)
        x = self._audio_tensor(input_values, sampling_rate)
        length = x.shape[-1]
        if padding_mask is not None:
            x = x * self._mask_tensor(padding_mask, x).view(x.shape[0], -1, length)
        chunk_length = self.config.chunk_length or length
        stride = self.config.chunk_stride or length
        codes, scales = [], []
        for offset in range(0, length, stride):
            chunk_codes, scale = self._encode_chunk(x[..., offset: offset + chunk_length], n_q)
            codes.append(chunk_codes)
            scales.append(scale)
        pad_length = codes[0].shape[-1] - codes[-1].shape[-1]
        codes[-1] = F.pad(codes[-1], (0, pad_length))
        output = EncodecEncoderOutput(torch.stack(codes), scales, pad_length)
        return output if return_dict else output.to_tuple()

    def encode_chunk(self, input_values: torch.Tensor | np.ndarray, bandwidth: float | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One chunk of audio (at most `chunk_length` samples) → (codes [batch, n_q, frames], scale).

        The building block of chunk-by-chunk coding (`encodec_fx.chunked`)."""
        n_q = self.num_quantizers_for_bandwidth(bandwidth)
        x = self._audio_tensor(input_values, None)
        if self.config.chunk_length is not None and x.shape[-1] > self.config.chunk_length:
            raise ValueError(f"a chunk has at most {self.config.chunk_length} samples, got {x.shape[-1]}")
        return self._encode_chunk(x, n_q)

    def _encode_chunk(self, x: torch.Tensor, n_q: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        fast = self._inference_path()
        with contextlib.nullcontext() if fast is None else torch.no_grad():
            scale = None
            if self.config.normalize:
                mono = x.sum(dim=1, keepdim=True) / x.shape[1]
                scale = mono.pow(2).mean(dim=-1, keepdim=True).sqrt() + 1e-8
                x = x / scale
                scale = scale.view(-1, 1)
            embeddings = self.encoder(x) if fast is None else fast.encode(x)
            return self.quantizer.encode(embeddings, n_q), scale

    # --- streaming -----------------------------------------------------------------------------

    def stream_encoder(self, bandwidth: float | None = None, frames_per_step: int = 1) -> StreamEncoder:
        """A stream of audio blocks → code blocks, frame by frame (causal model) or chunk by chunk
        (chunked model): the codes of `model.encode` on the whole input (`encodec_fx.stream`)."""
        from .stream import StreamEncoder
        return StreamEncoder(self, bandwidth, frames_per_step)

    def stream_decoder(self, precision: str = "exact") -> StreamDecoder:
        """A stream of code blocks → audio blocks: the audio of `model.decode` at `precision`
        (`encodec_fx.stream`, `encodec_fx.precision`)."""
        from .stream import StreamDecoder
        return StreamDecoder(self, check_precision(precision))

    # --- decoding ------------------------------------------------------------------------------

    def decode(self, audio_codes: torch.Tensor, audio_scales: list[torch.Tensor | None] | None = None,
               padding_mask: torch.Tensor | None = None, return_dict: bool = True,
               last_frame_pad_length: int = 0, *, precision: str = "exact") -> EncodecDecoderOutput | tuple:
        """Codes [chunks, batch, n_q, frames] → audio (batch, channels, samples).

        Without `padding_mask` the output has frames * hop_length samples per chunk (overlap-added);
        with it, the output is cut to the mask's length, i.e. exactly the encoded input's length.
        `precision` other than "exact" decodes faster and less precisely (`encodec_fx.precision`).
        """
        check_precision(precision)
        audio_codes = self._check_codes(audio_codes)
        chunks, batch = audio_codes.shape[:2]
        if audio_scales is None:
            audio_scales = [None] * chunks
        if len(audio_scales) != chunks:
            raise ValueError(f"got {len(audio_scales)} audio_scales for {chunks} chunks of codes; "
                             "expected one per chunk")
        audio_scales = [self._check_scale(scale, batch, f"audio_scales[{index}]")
                        for index, scale in enumerate(audio_scales)]
        frames = audio_codes.shape[-1]
        pad_length = as_number(last_frame_pad_length)
        if not is_integer(pad_length) or not 0 <= pad_length < frames:
            raise ValueError(f"last_frame_pad_length must be an integer from 0 to {frames - 1} (padding frames "
                             f"of the last chunk's {frames}), got {pad_length!r}")
        pieces = [(codes[..., :-pad_length] if index == chunks - 1 and pad_length > 0
                   else codes, scale) for index, (codes, scale) in enumerate(zip(audio_codes, audio_scales))]
        if self.fast:
            decoded = [audio for group in batches_of_equal_chunks(pieces, CHUNKS_PER_BATCH)
                       for audio in self._decode_chunks_together(group, precision)]
        else:  # the reference's order: one chunk after the other
            decoded = [self._decode_chunk(codes, scale, precision) for codes, scale in pieces]
        audio = overlap_add(decoded, self.config.chunk_sizes()[1]) if self.config.chunk_length else decoded[0]
        if padding_mask is not None:
            audio = audio[..., : self._decoded_length(padding_mask, batch, audio.shape[-1])]
        output = EncodecDecoderOutput(audio)
        return output if return_dict else output.to_tuple()

    def decode_chunk(self, codes: torch.Tensor, scale: torch.Tensor | None = None, *, precision: str = "exact"
                     ) -> torch.Tensor:
        """One chunk's codes [batch, n_q, frames] → audio (batch, channels, frames * hop_length), before
        any cross-fade with its neighbours."""
        check_precision(precision)
        codes = check_codes(codes, "codes", "[batch, n_q, frames]", len(self.quantizer.layers),
                            self.config.codebook_size)
        return self._decode_chunk(codes, self._check_scale(scale, codes.shape[0], "scale"), precision)

    def decode_embeddings(self, embeddings: torch.Tensor, precision: str = "exact") -> torch.Tensor:
        """Quantised embeddings (batch, dimension, frames) → audio (batch, channels, frames * hop_length) by
        the inference path at `precision`: for callers that sum the codebooks their own way (lost tokens,
        augmentation). "exact" is `model.decoder(embeddings)` within float rounding."""
        check_precision(precision)
        fast = self._inference_path()
        if fast is None and precision != "exact":
            raise ValueError(f"precision={precision!r} needs the fast inference path: set model.fast = True and "
                             "decode in eval mode or without gradients")
        with contextlib.nullcontext() if fast is None else torch.no_grad():
            return self.decoder(embeddings) if fast is None else fast.decode(embeddings, precision)

    def _decode_chunk(self, codes: torch.Tensor, scale: torch.Tensor | None, precision: str = "exact"
                      ) -> torch.Tensor:
        with contextlib.nullcontext() if self._inference_path() is None else torch.no_grad():
            audio = self.decode_embeddings(self.quantizer.decode(codes.to(self.device)), precision)
            return audio if scale is None else audio * scale.to(audio).view(-1, 1, 1)

    def _decode_chunks_together(self, pieces: list[tuple[torch.Tensor, torch.Tensor | None]],
                                precision: str = "exact") -> list[torch.Tensor]:
        """Chunks of equal length decoded as one batch: the decoder's LSTM then reads its weights
        once per frame for all of them, not once per chunk (audio within float rounding of one by one)."""
        if len(pieces) == 1:
            return [self._decode_chunk(*pieces[0], precision)]
        codes = torch.cat([codes for codes, _ in pieces])
        batch = pieces[0][0].shape[0]
        scales = [scale.reshape(-1).expand(batch) for _, scale in pieces if scale is not None]  # all or none
        return list(self._decode_chunk(codes, torch.cat(scales) if scales else None, precision).chunk(len(pieces)))

    def forward(self, input_values: torch.Tensor | np.ndarray | None, padding_mask: torch.Tensor | None = None,
                bandwidth: float | None = None, audio_codes: torch.Tensor | None = None,
                audio_scales: list[torch.Tensor | None] | None = None, return_dict: bool = True,
                last_frame_pad_length: int = 0) -> EncodecOutput | tuple:
        """Encode then decode (or decode the given codes); the audio has the input's length."""
        if (audio_codes is None) != (audio_scales is None):
            raise ValueError("give both audio_codes and audio_scales, or neither")
        if input_values is not None and not isinstance(input_values, (torch.Tensor, np.ndarray)):
            raise ValueError(f"input_values must be a torch.Tensor or numpy array (or None with audio_codes), "
                             f"got {type(input_values).__name__}")
        if audio_codes is None:
            if input_values is None:
                raise ValueError("give input_values to encode, or audio_codes and audio_scales to decode")
            audio_codes, audio_scales, last_frame_pad_length = self.encode(input_values, padding_mask, bandwidth)
        decoded = self.decode(audio_codes, audio_scales, last_frame_pad_length=last_frame_pad_length)
        assert isinstance(decoded, EncodecDecoderOutput) and decoded.audio_values is not None  # return_dict=True
        audio = decoded.audio_values
        if input_values is not None:  # given codes alone, the audio is all they decode to
            audio = audio[..., : input_values.shape[-1]]
        output = EncodecOutput(audio_codes, audio)
        return output if return_dict else output.to_tuple()

    # --- bandwidths ----------------------------------------------------------------------------

    def num_quantizers_for_bandwidth(self, bandwidth: float | None = None) -> int:
        """Codebooks coded at `bandwidth` kbps, which must be one of `config.target_bandwidths` (None:
        the smallest, as `encode` takes it); unlike the config's formula, other values are refused."""
        bandwidths = self.config.target_bandwidths
        kbps = as_number(bandwidths[0] if bandwidth is None else bandwidth)
        if not is_finite_number(kbps) or kbps not in bandwidths:
            raise ValueError(f"bandwidth {kbps!r} kbps is not supported by this model; choose one of {bandwidths}")
        return self.config.num_quantizers_for_bandwidth(kbps)

    # --- checkpoints ---------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike, config: EncodecConfig | None = None, *,
                        device: str | torch.device | None = None, **hub_kwargs: Any) -> EncodecModel:
        """Load a shipped model by name (`encodec-fx-24khz`), a hub-layout directory, an original
        `.th`/state-dict file, a training export or a hub id, onto `device` (default: the CPU), in
        eval mode. The `encodec_fx.checkpoints` docstring details the sources."""
        from .checkpoints import load_model
        target = None if device is None else resolve_device(device)  # checked before the weights are read
        model = load_model(cls, source, config=config, **hub_kwargs)
        return model if target is None else model.to(target)

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write config.json, preprocessor_config.json and model.safetensors (the hub layout)."""
        from .checkpoints import save_model
        save_model(self, directory)

    def export_onnx(self, directory: str | os.PathLike, frames_per_step: int | None = None, *,
                    overwrite: bool = False) -> dict[str, Any]:
        """Write ONNX graphs of the encoder and decoder (and, for a causal model, their streaming steps with
        explicit state) and metadata.json into `directory`; returns the metadata (`encodec_fx.onnx_export`)."""
        from .onnx_export import export_onnx
        return export_onnx(self, directory, frames_per_step, overwrite)

    # --- input checks --------------------------------------------------------------------------

    def _audio_tensor(self, audio: torch.Tensor | np.ndarray, sampling_rate: int | None) -> torch.Tensor:
        check_sampling_rate(sampling_rate, self.config.sampling_rate)
        if isinstance(audio, np.ndarray):
            audio = tensor_of(audio, "input_values")
        if not isinstance(audio, torch.Tensor):
            raise ValueError(f"input_values must be a torch.Tensor or numpy array, got {type(audio).__name__}")
        channels = self.config.audio_channels
        if audio.dim() != 3:
            raise ValueError(f"input_values has shape {tuple(audio.shape)}; expected (batch, {channels}, samples)")
        if audio.shape[1] != channels:
            raise ValueError(f"input_values has {audio.shape[1]} channels; this model takes {channels} "
                             f"(shape (batch, {channels}, samples))")
        check_samples(audio, "input_values")
        last = self.decoder.layers[-1]
        assert isinstance(last, NormConv1d) and isinstance(last.conv.bias, torch.Tensor)
        weight = last.conv.bias
        return audio.to(device=weight.device, dtype=weight.dtype)

    @staticmethod
    def _mask_tensor(padding_mask: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        expected = (audio.shape[0], audio.shape[-1])
        if not isinstance(padding_mask, (torch.Tensor, np.ndarray)) or tuple(padding_mask.shape) != expected:
            shape = tuple(padding_mask.shape) if hasattr(padding_mask, "shape") else type(padding_mask).__name__
            raise ValueError(f"padding_mask has shape {shape}; expected (batch, samples) = {expected}")
        if isinstance(padding_mask, np.ndarray) and padding_mask.dtype.kind not in "biuf":
            raise ValueError(f"padding_mask has dtype {padding_mask.dtype}; expected 1 for samples and 0 for "
                             "padding, as bool or numbers")
        return torch.as_tensor(padding_mask, device=audio.device).bool()

    def _check_codes(self, codes: torch.Tensor) -> torch.Tensor:
        codes = check_codes(codes, "audio_codes", "[chunks, batch, n_q, frames]", len(self.quantizer.layers),
                            self.config.codebook_size)
        if self.config.chunk_length is None and codes.shape[0] != 1:
            raise ValueError(f"audio_codes has {codes.shape[0]} chunks; this model codes audio as one chunk")
        return codes

    def _check_scale(self, scale: torch.Tensor | None, batch: int, what: str) -> torch.Tensor | None:
        if scale is None:
            if self.config.normalize:
                raise ValueError("this model normalises its input: decode needs the audio_scales returned by encode")
            return None
        return check_scale(scale, batch, what)

    @staticmethod
    def _decoded_length(padding_mask: torch.Tensor, batch: int, available: int) -> int:
        """The encoded input's length, read from `decode`'s padding mask ((batch, samples), or (samples,)
        as transformers also takes it)."""
        shape = tuple(padding_mask.shape) if isinstance(padding_mask, (torch.Tensor, np.ndarray)) else None
        if shape is None or len(shape) not in (1, 2) or shape[:-1] not in ((), (batch,)) or shape[-1] > available:
            raise ValueError(f"padding_mask is {shape or type(padding_mask).__name__}; expected (batch, samples) "
                             f"with batch {batch} and at most the {available} samples these codes decode to")
        return shape[-1]


def _rebuild(config: EncodecConfig, state: dict[str, torch.Tensor], fast: bool, training: bool) -> EncodecModel:
    model = EncodecModel(config, fast=fast).to(next(iter(state.values())).device)
    model.load_state_dict(state)
    return model.train(training)


CHUNKS_PER_BATCH = 4
"""Chunks the fast path decodes together. Measured on the 48 kHz model, one thread, 10 s: 4 decode
in 1.06 s instead of 1.17 (the LSTM reads its weights once per frame for all of them); 8 and 16 are
slower again, as activations of tens of MB per chunk cost more memory traffic than the LSTM saves."""


def batches_of_equal_chunks(pieces: list, size: int) -> list[list]:
    """Consecutive runs of at most `size` chunks whose codes and scales have the same shapes."""
    batches: list[list] = []
    for piece in pieces:
        codes, scale = piece
        if batches and len(batches[-1]) < size and batches[-1][0][0].shape == codes.shape \
                and (batches[-1][0][1] is None) == (scale is None):
            batches[-1].append(piece)
        else:
            batches.append([piece])
    return batches
