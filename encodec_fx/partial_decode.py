"""Decoding codes of which only some tokens were received.

`EncodecModel.decode` sums one embedding per codebook and frame; a token that was lost (packet
loss, bandwidth lowered for a while) must instead add nothing, so this sums only received tokens
and otherwise decodes as the model does: per chunk, scaled, overlap-added, cut to the input length.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch

from .overlap import overlap_add

if TYPE_CHECKING:  # the model builds on this module (`model.stream_encoder`)
    from .model import EncodecModel


def received_embeddings(model: EncodecModel, codes: torch.Tensor, received: torch.Tensor) -> torch.Tensor:
    """Codes and received mask [batch, n_q, frames] → embeddings (batch, dimension, frames) of the received tokens."""
    embeddings = sum(codebook.decode(codes[:, k]) * received[:, k, :, None]
                     for k, codebook in enumerate(model.quantizer.codebooks()[: codes.shape[1]]))
    return cast(torch.Tensor, embeddings).transpose(1, 2)  # codes has at least one codebook


def decode_chunk_received(model: EncodecModel, codes: torch.Tensor, received: torch.Tensor,
                          scale: torch.Tensor | None, precision: str = "exact") -> torch.Tensor:
    """One chunk's codes and mask [batch, n_q, frames] → audio (batch, channels, frames · hop_length), by the
    model's inference path at `precision` (`encodec_fx.precision`), as `model.decode` decodes."""
    audio = model.decode_embeddings(received_embeddings(model, codes, received), precision)
    return audio if scale is None else audio * scale.view(-1, 1, 1)


def decode_received(model: EncodecModel, audio_codes: torch.Tensor, received: torch.Tensor,
                    audio_scales: list[torch.Tensor | None], last_frame_pad_length: int,
                    num_samples: int, precision: str = "exact") -> torch.Tensor:
    """Codes and received mask [chunks, batch, n_q, frames] → audio (batch, channels, num_samples)."""
    chunks = audio_codes.shape[0]
    decoded = []
    for index, (codes, mask, scale) in enumerate(zip(audio_codes, received, audio_scales)):
        if index == chunks - 1 and last_frame_pad_length > 0:
            codes, mask = codes[..., :-last_frame_pad_length], mask[..., :-last_frame_pad_length]
        decoded.append(decode_chunk_received(model, codes, mask, scale, precision))
    audio = overlap_add(decoded, model.config.chunk_sizes()[1]) if model.config.chunk_length else decoded[0]
    return audio[..., :num_samples]
