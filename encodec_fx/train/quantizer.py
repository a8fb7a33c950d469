"""Training the residual vector quantiser in place: EMA codebooks on the inference buffers.

As in the paper and the original `core_vq`, codebook vectors are not gradient-trained: each is the
exponential moving average (decay 0.99) of the encoder vectors assigned to it, kept as `embed_avg`
(sum) over `cluster_size` (count, Laplace-smoothed). Codebooks start from the first batch they see
(k-means, or random batch vectors), and codes whose average count falls below a share of the average
code's are moved to random batch vectors. The encoder gets the straight-through gradient and a commitment loss.

Everything lives in the `Codebook` buffers `inited`, `cluster_size`, `embed` and `embed_avg` of
`encodec_fx.quantizer`, so a trained model saves and loads with `save_pretrained`/`from_pretrained`.

Three deliberate departures from the original: dead codes are judged against the average count
(a share of it), not an absolute count that only fits the original's batch size; a replaced dead code
also gets a matching `embed_avg` (the original rewrites `embed` from the stale average in the same
step, undoing the replacement), and k-means sets `embed_avg = embed · cluster_size` (the original
stores `embed`, shrinking every code at the first update). Later residuals are taken from the
detached codes, so every layer's commitment term reaches the encoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch.nn import functional as F

from ..quantizer import Codebook, ResidualVectorQuantizer

REFERENCE_DEAD_CODE_THRESHOLD = 2.0  # the original recipe: vectors per step, absolute
REFERENCE_BATCH_FRAMES = 64 * 75  # its batch: 64 one-second items at 75 frames a second
REFERENCE_CODEBOOK_SIZE = 1024


@dataclass(frozen=True)
class CodebookTraining:
    """How codebooks learn. `init` is "kmeans" or "random" (random batch vectors, no iterations).

    A code is dead when its average count falls below `dead_code_share` of an average code's count.
    The reference recipe's absolute threshold of 2 vectors per step was made for its batch of 64 × 75
    frames over 1024 codes (4.7 per code): at our batch of 8 (0.59 per code) the same 2 marked 97 % of
    every codebook dead at each step, so the quantiser was mostly last batch's random vectors and the
    codec learnt to pass only what survives that noise, the band below 1 kHz (training/LOG.md).
    """

    decay: float = 0.99
    epsilon: float = 1e-5
    dead_code_share: float = REFERENCE_DEAD_CODE_THRESHOLD / (REFERENCE_BATCH_FRAMES / REFERENCE_CODEBOOK_SIZE)
    init: str = "kmeans"
    kmeans_iterations: int = 50

    def __post_init__(self) -> None:
        if self.init not in ("kmeans", "random"):
            raise ValueError(f"codebook init must be 'kmeans' or 'random', got {self.init!r}")


class TrainingQuantization(NamedTuple):
    quantized: torch.Tensor  # (batch, dim, frames), the straight-through sum of the chosen codes
    codes: torch.Tensor  # (batch, n_q, frames)
    commitment_loss: torch.Tensor  # mean over layers of the mean squared residual-to-code distance


def reset_codebooks(quantizer: ResidualVectorQuantizer) -> None:
    """Mark every codebook untrained, so each starts from the first batch that reaches it."""
    for codebook in quantizer.codebooks():
        codebook.inited.zero_()


def quantize_for_training(quantizer: ResidualVectorQuantizer, embeddings: torch.Tensor, n_q: int,
                          settings: CodebookTraining = CodebookTraining(), update: bool | None = None,
                          generator: torch.Generator | None = None) -> TrainingQuantization:
    """Quantise (batch, dim, frames) embeddings with the first `n_q` codebooks, updating those codebooks
    (initialisation, EMA, dead codes) when `update` (default: `quantizer.training`).

    Codes are chosen before the update, with the inference `Codebook.encode`; `generator` (CPU) drives
    the random choices of initialisation and dead-code replacement."""
    update = quantizer.training if update is None else update
    batch, dim, frames = embeddings.shape
    residual = embeddings.transpose(1, 2).reshape(-1, dim)
    total = torch.zeros_like(residual)
    codes, commitments = [], []
    for codebook in quantizer.codebooks()[:n_q]:
        vectors = residual.detach()
        if update and not codebook.inited.item():
            initialise_codebook(codebook, vectors, settings, generator)
        indices = codebook.encode(vectors)
        chosen = codebook.decode(indices)
        if update:
            update_codebook(codebook, vectors, indices, settings, generator)
        commitments.append(F.mse_loss(residual, chosen))
        residual = residual - chosen
        total = total + chosen
        codes.append(indices.view(batch, frames))
    flat = embeddings.transpose(1, 2).reshape(-1, dim)
    straight_through = flat + (total - flat).detach()
    quantized = straight_through.view(batch, frames, dim).transpose(1, 2)
    return TrainingQuantization(quantized, torch.stack(codes, dim=1), torch.stack(commitments).mean())


def sample_vectors(vectors: torch.Tensor, count: int, generator: torch.Generator | None) -> torch.Tensor:
    """`count` rows of `vectors`, without repeats when there are enough."""
    available = vectors.shape[0]
    if available >= count:
        indices = torch.randperm(available, generator=generator)[:count]
    else:
        indices = torch.randint(0, available, (count,), generator=generator)
    return vectors[indices.to(vectors.device)]


def nearest(vectors: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    distance = vectors.pow(2).sum(1, keepdim=True) - 2 * vectors @ centres.t() + centres.pow(2).sum(1)
    return distance.argmin(dim=1)


def kmeans(vectors: torch.Tensor, clusters: int, iterations: int,
           generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(centres, counts): Lloyd's algorithm from random vectors; empty clusters keep their centre.
    With 0 iterations, the random vectors and how many batch vectors each one is nearest to."""
    centres = sample_vectors(vectors, clusters, generator)
    for _ in range(iterations):
        assignment = nearest(vectors, centres)
        counts = torch.bincount(assignment, minlength=clusters)
        sums = torch.zeros_like(centres).index_add_(0, assignment, vectors)
        centres = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centres)
    counts = torch.bincount(nearest(vectors, centres), minlength=clusters)
    return centres, counts.to(vectors.dtype)


@torch.no_grad()
def initialise_codebook(codebook: Codebook, vectors: torch.Tensor, settings: CodebookTraining,
                        generator: torch.Generator | None) -> None:
    iterations = settings.kmeans_iterations if settings.init == "kmeans" else 0
    centres, counts = kmeans(vectors, codebook.embed.shape[0], iterations, generator)
    codebook.embed.copy_(centres)
    codebook.cluster_size.copy_(counts)
    codebook.embed_avg.copy_(centres * counts[:, None])
    codebook.inited.fill_(1)


@torch.no_grad()
def update_codebook(codebook: Codebook, vectors: torch.Tensor, indices: torch.Tensor, settings: CodebookTraining,
                    generator: torch.Generator | None) -> None:
    """One EMA step towards the mean of each code's assigned vectors, then dead-code replacement."""
    size = codebook.embed.shape[0]
    counts = torch.bincount(indices, minlength=size).to(vectors.dtype)
    sums = torch.zeros_like(codebook.embed).index_add_(0, indices, vectors)
    codebook.cluster_size.mul_(settings.decay).add_(counts, alpha=1 - settings.decay)
    codebook.embed_avg.mul_(settings.decay).add_(sums, alpha=1 - settings.decay)
    total = codebook.cluster_size.sum()
    smoothed = (codebook.cluster_size + settings.epsilon) / (total + size * settings.epsilon) * total
    codebook.embed.copy_(codebook.embed_avg / smoothed[:, None])
    dead = codebook.cluster_size < settings.dead_code_share * total / size
    if dead.any():
        replacements = sample_vectors(vectors, size, generator)
        codebook.embed.copy_(torch.where(dead[:, None], replacements, codebook.embed))
        codebook.embed_avg.copy_(torch.where(dead[:, None], replacements * smoothed[:, None], codebook.embed_avg))
