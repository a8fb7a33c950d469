"""What the benchmark scripts share: a reproducible random-weight model and best-of timing.

Scripts run as `python benchmarks/NAME.py`, so this folder is on the import path (`from common import ...`).
"""

from __future__ import annotations

import time
from typing import Callable

import torch

from encodec_fx import EncodecConfig, EncodecModel


def best_of(runs: int, function: Callable[[], object]) -> float:
    """The fastest of `runs` calls, in seconds: the least disturbed by other work on the machine."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def random_model(config: EncodecConfig | None = None, seed: int = 0) -> EncodecModel:
    """A model with random weights and codebooks (a fresh model's are zero), the same in every process."""
    torch.manual_seed(seed)
    model = EncodecModel(config or EncodecConfig.encodec_24khz()).eval()
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith(("embed", "embed_avg")):
                buffer.normal_()
    return model
