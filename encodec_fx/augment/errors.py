"""Damage inside the packets that do arrive: bit errors and codebooks dropped from a frame.

Bit errors flip each bit of each token independently (an unprotected channel at a given bit error rate),
so a token changes with probability 1 − (1 − rate)^bits, into a code a few bits away rather than any code
(`TokenSubstitution`). Codebook dropout models a layered transport that sheds the fine layers of a frame
under pressure: a dropped frame keeps only its first j codebooks, j uniform from 1 to what it had less one.
"""

from __future__ import annotations

import numpy as np


def flip_bits(rng: np.random.Generator, tokens: np.ndarray, rate: float, bits: int) -> np.ndarray:
    """Tokens (any shape, codes below 2**bits) with each bit flipped with probability `rate`."""
    if rate <= 0:
        return tokens
    flips = rng.random((*tokens.shape, bits)) < rate
    masks = (flips.astype(np.int64) << np.arange(bits)).sum(axis=-1)
    return tokens ^ masks


def drop_codebooks(rng: np.random.Generator, kept: np.ndarray, rate: float) -> np.ndarray:
    """Codebooks kept per frame ((frames,) int) after each frame with two or more loses, with probability
    `rate`, all but its first j (j uniform from 1 to its count less one)."""
    if rate <= 0:
        return kept
    dropped = (rng.random(kept.shape) < rate) & (kept >= 2)
    fewer = 1 + (rng.random(kept.shape) * np.maximum(kept - 1, 1)).astype(np.int64)
    return np.where(dropped, np.minimum(fewer, kept - 1), kept)
