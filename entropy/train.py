"""Train the entropy-coding LM on integer tokens: random crops of token sequences, a sampled number
of codebooks per batch, AdamW with warm-up and cosine decay, and bits per token on held-out sequences.

Where the tokens come from (a codec's codes of a folder of audio) is the application's part:
`encodec-fx train-lm` (`encodec_fx.train.lm_tokens`).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from entropy.lm import EntropyLM, LMConfig
from entropy.train_settings import LMTrainingConfig


def random_batch(sequences: list[np.ndarray], batch_size: int, crop: int, codebooks: int,
                 generator: np.random.Generator) -> torch.Tensor:
    """[batch, codebooks, crop] random crops, each sequence picked in proportion to its length."""
    lengths = np.array([s.shape[-1] - crop + 1 for s in sequences], dtype=float)
    picks = generator.choice(len(sequences), size=batch_size, p=lengths / lengths.sum())
    crops = []
    for index in picks:
        start = generator.integers(0, sequences[index].shape[-1] - crop + 1)
        crops.append(sequences[index][:codebooks, start: start + crop])
    return torch.from_numpy(np.stack(crops).astype(np.int64))


def cross_entropy_bits(lm: EntropyLM, codes: torch.Tensor) -> torch.Tensor:
    logits = lm(codes)
    return F.cross_entropy(logits.flatten(0, 2), codes.flatten(), reduction="sum") / math.log(2)


@torch.no_grad()
def bits_per_token(lm: EntropyLM, sequences: list[np.ndarray], codebooks: int, window: int,
                   device: torch.device) -> float:
    """Mean code length in bits the LM gives held-out tokens, each sequence in windows of `window` frames."""
    total_bits, total_tokens = 0.0, 0
    for sequence in sequences:
        for start in range(0, sequence.shape[-1], window):
            codes = torch.from_numpy(sequence[None, :codebooks, start: start + window].astype(np.int64)).to(device)
            total_bits += float(cross_entropy_bits(lm, codes))
            total_tokens += codes.numel()
    return total_bits / total_tokens


def learning_rate(step: int, config: LMTrainingConfig) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.learning_rate * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train_lm(lm: EntropyLM, train: list[np.ndarray], held_out: list[np.ndarray], codebook_choices: list[int],
             config: LMTrainingConfig, device: torch.device,
             log: Callable[[str], None] = print) -> dict[int, float]:
    """AdamW + cosine schedule on random crops; returns held-out bits per token per codebook count."""
    crop = min(config.crop_frames, *(s.shape[-1] for s in train))
    lm.to(device).train()
    optimizer = torch.optim.AdamW(lm.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = np.random.default_rng(config.seed)
    started = time.monotonic()
    for step in range(config.steps):
        codebooks = int(generator.choice(codebook_choices))
        codes = random_batch(train, config.batch_size, crop, codebooks, generator).to(device)
        loss = cross_entropy_bits(lm, codes) / codes.numel()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
        optimizer.step()
        if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
            log(f"step {step + 1}/{config.steps}: train {loss.item():.3f} bits/token, "
                f"{time.monotonic() - started:.0f} s")
    lm.eval()
    return {k: bits_per_token(lm, held_out or train, k, crop, device) for k in codebook_choices}


def lm_config_for(n_q: int, card: int, frame_rate: float, size: str, intra_frame: bool = True) -> LMConfig:
    """The paper's LM sized for a codec of `n_q` codebooks of `card` codes at `frame_rate` frames per
    second (it sees 3.5 s of frames), or a small one for quick experiments; with `intra_frame`, its
    heads also see the frame's coarser codes (see `entropy.lm`)."""
    settings = asdict(LMConfig()) | {"n_q": n_q, "past_context": int(3.5 * frame_rate), "card": card,
                                     "intra_frame": intra_frame}
    if size == "small":
        settings |= {"dim": 64, "num_heads": 4, "num_layers": 2}
    return LMConfig(**settings)
