"""Residual vector quantiser (inference only: codebooks are loaded, never updated here)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .config import EncodecConfig
from .tensor_state import TensorState


class Codebook(nn.Module):
    """One codebook. `inited`, `cluster_size` and `embed_avg` are training statistics, kept only so
    checkpoints load and save unchanged."""

    # Buffers, as the checkpoints name them.
    inited: torch.Tensor
    cluster_size: torch.Tensor
    embed: torch.Tensor
    embed_avg: torch.Tensor

    def __init__(self, config: EncodecConfig):
        super().__init__()
        embed = torch.zeros(config.codebook_size, config.hidden_size)  # = codebook_dim (EncodecConfig checks)
        self.register_buffer("inited", torch.ones(1))
        self.register_buffer("cluster_size", torch.zeros(config.codebook_size))
        self.register_buffer("embed", embed)
        self.register_buffer("embed_avg", embed.clone())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest code (squared distance) for each row of x (N, dim), written as the references do
        so that ties and rounding fall the same way."""
        embed = self.embed.t()
        distance = -(x.pow(2).sum(1, keepdim=True) - 2 * x @ embed + self._squared_norms())
        return distance.max(dim=-1).indices

    def _squared_norms(self) -> torch.Tensor:
        """(1, codebook_size) squared code norms, kept until `embed` is written or replaced (see
        `TensorState`, which keeps nothing for a codebook made under inference mode): a streaming
        encoder quantises a frame or two at a time, and recomputing them per call took longer than
        the search itself. The same operations, so the same values."""
        key = TensorState(self.embed), torch.is_inference_mode_enabled()
        cached = getattr(self, "_norms_cache", None)
        if cached is None or cached[0] != key:
            with torch.no_grad():
                cached = key, self.embed.t().pow(2).sum(0, keepdim=True)
            self._norms_cache = cached
        return cached[1]

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return F.embedding(codes, self.embed)


class QuantizerLayer(nn.Module):
    """Wraps a codebook under the transformers key name (`quantizer.layers.i.codebook`)."""

    codebook: Codebook

    def __init__(self, config: EncodecConfig):
        super().__init__()
        self.codebook = Codebook(config)


class ResidualVectorQuantizer(nn.Module):
    """Each layer quantises what the previous ones left over; decoding sums the chosen vectors."""

    def __init__(self, config: EncodecConfig):
        super().__init__()
        self.layers = nn.ModuleList(QuantizerLayer(config) for _ in range(config.num_quantizers))

    def codebooks(self) -> list[Codebook]:
        """The layers' codebooks in order, typed (to mypy a ModuleList holds plain Modules)."""
        codebooks = []
        for layer in self.layers:
            assert isinstance(layer, QuantizerLayer)
            codebooks.append(layer.codebook)
        return codebooks

    def encode(self, embeddings: torch.Tensor, num_quantizers: int) -> torch.Tensor:
        """(B, dim, T) embeddings → (B, num_quantizers, T) codes.

        The search runs on the time-major view of `embeddings`, as the references' does: for one
        item of 2 to 15 frames that view is a column-major matrix, for which MKL's product takes a
        path that rounds differently (and is ten times slower). `encode_frames` on a contiguous
        (B, T, dim) tensor avoids it where bit parity with the references does not matter."""
        return self.encode_frames(embeddings.transpose(1, 2), num_quantizers)

    def encode_frames(self, residual: torch.Tensor, num_quantizers: int) -> torch.Tensor:
        """(B, T, dim) time-major embeddings → (B, num_quantizers, T) codes."""
        batch, frames, dim = residual.shape
        codes = []
        for codebook in self.codebooks()[:num_quantizers]:
            indices = codebook.encode(residual.reshape(-1, dim)).view(batch, frames)
            residual = residual - codebook.decode(indices)
            codes.append(indices)
        return torch.stack(codes, dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, K, T) codes → (B, dim, T) embeddings."""
        codebooks = self.codebooks()
        quantized = codebooks[0].decode(codes[:, 0])  # on the codebooks' device, in their dtype
        for k in range(1, codes.shape[1]):
            quantized = quantized + codebooks[k].decode(codes[:, k])
        return quantized.transpose(1, 2)
