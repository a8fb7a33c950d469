"""Decoding codes of which only some tokens were received.

`EncodecModel.decode` sums one embedding per codebook and frame; a token that was lost (packet
loss, bandwidth lowered for a while) must instead add nothing, so this sums only received tokens
and otherwise decodes as the model does: per chunk, scaled, overlap-added, cut to the input length.
"""

from __future__ import annotations

import torch

from ..model import EncodecModel, overlap_add


def decode_received(model: EncodecModel, audio_codes: torch.Tensor, received: torch.Tensor,
                    audio_scales: list[torch.Tensor | None], last_frame_pad_length: int,
                    num_samples: int) -> torch.Tensor:
    """Codes and received mask [chunks, batch, n_q, frames] → audio (batch, channels, num_samples)."""
    chunks = audio_codes.shape[0]
    decoded = []
    for index, (codes, mask, scale) in enumerate(zip(audio_codes, received, audio_scales)):
        if index == chunks - 1 and last_frame_pad_length > 0:
            codes, mask = codes[..., :-last_frame_pad_length], mask[..., :-last_frame_pad_length]
        embeddings = sum(layer.codebook.decode(codes[:, k]) * mask[:, k, :, None]
                         for k, layer in enumerate(model.quantizer.layers[: codes.shape[1]]))
        audio = model.decoder(embeddings.transpose(1, 2))
        decoded.append(audio if scale is None else audio * scale.view(-1, 1, 1))
    audio = overlap_add(decoded, model.config.chunk_stride) if model.config.chunk_length else decoded[0]
    return audio[..., :num_samples]
