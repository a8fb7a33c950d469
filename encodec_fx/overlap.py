"""Cross-fading the decoded chunks of a chunked model (48 kHz): the references' triangular weights."""

from __future__ import annotations

import torch


def crossfade_weight(length: int, like: torch.Tensor) -> torch.Tensor:
    """The references' triangular weight of a decoded chunk's samples, never 0 at its ends."""
    t = torch.linspace(0, 1, length + 2, device=like.device, dtype=like.dtype)[1:-1]
    return 0.5 - (t - 0.5).abs()


def overlap_add(chunks: list[torch.Tensor], stride: int) -> torch.Tensor:
    """Cross-fade decoded chunks with triangular weights (shaped by the first chunk), normalised."""
    first = chunks[0]
    total = stride * (len(chunks) - 1) + chunks[-1].shape[-1]
    weight = crossfade_weight(first.shape[-1], first)
    out = torch.zeros(*first.shape[:-1], total, device=first.device, dtype=first.dtype)
    weight_sum = torch.zeros(total, device=first.device, dtype=first.dtype)
    for index, chunk in enumerate(chunks):
        offset, length = index * stride, chunk.shape[-1]
        out[..., offset: offset + length] += weight[:length] * chunk
        weight_sum[offset: offset + length] += weight[:length]
    return out / weight_sum
