"""Where an augmentation's random numbers come from, so that a run can be reproduced.

`seed` is an integer, a `numpy.random.Generator`, a `torch.Generator` or None. An integer seeds a generator
of the transform's own; in a `DataLoader` worker it is seeded with (seed, worker id), so that workers, which
each get a copy of the transform, do not all draw the same damage (and a rerun draws the same again). None
falls back on the global state the training framework already seeds per worker: Python's `random` for the
audiomentations-style transforms (as audiomentations does), torch's for the torch-style ones.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

from entropy.number_checks import is_integer

Seed = int | np.random.Generator | torch.Generator | None


def check_seed(owner: str, seed: object) -> None:
    if seed is None or isinstance(seed, (np.random.Generator, torch.Generator)):
        return
    if not is_integer(seed) or not 0 <= seed < 2 ** 64:
        raise ValueError(f"{owner}.seed must be None, an integer from 0 to 2**64 - 1, a numpy.random.Generator or "
                         f"a torch.Generator, got {seed!r}")


def _worker_id() -> int | None:
    info = torch.utils.data.get_worker_info()
    return None if info is None else int(info.id)


class RandomSource:
    """A numpy generator for each call of a transform, from its `seed` (see the module's docstring)."""

    def __init__(self, seed: Seed, fallback: str):
        self.seed, self.fallback = seed, fallback  # fallback: "python" or "torch"
        self._generator: np.random.Generator | None = None
        self._owner: tuple[int, int | None] | None = None  # (process, worker) the generator was made in

    def generator(self) -> np.random.Generator:
        seed = self.seed
        if isinstance(seed, np.random.Generator):
            return seed
        if isinstance(seed, torch.Generator):
            return np.random.default_rng(int(torch.randint(0, 2 ** 62, (1,), generator=seed)))
        if seed is None:
            entropy = random.getrandbits(64) if self.fallback == "python" else int(torch.randint(0, 2 ** 62, (1,)))
            return np.random.default_rng(entropy)
        owner = (os.getpid(), _worker_id())
        if self._generator is None or self._owner != owner:  # a forked worker starts its own sequence
            worker = owner[1]
            self._generator = np.random.default_rng(int(seed) if worker is None else [int(seed), worker + 1])
            self._owner = owner
        return self._generator

    def __getstate__(self) -> dict[str, Any]:
        return {"seed": self.seed, "fallback": self.fallback, "_generator": None, "_owner": None}
