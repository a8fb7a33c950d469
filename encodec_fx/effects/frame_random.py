"""Random numbers that are a function of (seed, position), so that a stream draws what batch draws.

Drawing from one generator in sequence would give the frames of a streamed block other numbers than
the same frames got in one batch call. Instead each position (a frame, a packet, a token) gets its
own number, a hash of the seed and its indices (SplitMix64's finaliser): the damage depends only on
where a token sits on the timeline, never on how the stream was cut into blocks.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def uniform(seed: int, salt: int, *indices: np.ndarray) -> np.ndarray:
    """Uniform numbers in [0, 1), one per element of the broadcast `indices`; `salt` tells apart the
    draws an effect makes for different purposes."""
    arrays = np.broadcast_arrays(*(np.asarray(index, dtype=np.int64) for index in indices))
    z = np.full(arrays[0].shape, seed, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for value in (np.full(z.shape, salt), *arrays):
            z = _mix(z ^ _mix(value.astype(np.uint64) + _GOLDEN))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def fresh_seed() -> int:
    """A seed for `seed=None`: new damage for every batch call or stream."""
    return int(np.random.default_rng().integers(2 ** 63))
