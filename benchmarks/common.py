"""What the benchmark scripts share: reproducible random-weight models (ours, and the original
package's for comparison) and best-of timing.

Scripts run as `python benchmarks/NAME.py`, so this folder is on the import path (`from common import ...`);
tests/conftest.py imports the reference-model helpers from here too.
"""

from __future__ import annotations

import sys
import time
import types
from typing import Callable

import torch

from encodec_fx import EncodecConfig, EncodecModel

PRESETS = {"24khz": EncodecConfig.encodec_24khz, "48khz": EncodecConfig.encodec_48khz}


def best_of(runs: int, function: Callable[[], object]) -> float:
    """The fastest of `runs` calls, in seconds: the least disturbed by other work on the machine."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def random_model(config: EncodecConfig | None = None, seed: int = 0) -> EncodecModel:
    """Our model with random weights, codebooks and norms, the same in every process."""
    torch.manual_seed(seed)
    return randomize(EncodecModel(config or EncodecConfig.encodec_24khz()), seed)


def import_original_encodec():
    """Import the original `encodec` package. It imports torchaudio for file I/O only, and torchaudio
    wheels do not match our torch, so empty stand-ins are registered while it imports, and taken away
    after: transformers asks whether torchaudio exists when its modules load, and a stand-in without a
    module spec makes that question raise."""
    stand_ins = [name for name in ("torchaudio", "torchaudio.transforms") if name not in sys.modules]
    for name in stand_ins:
        sys.modules[name] = types.ModuleType(name)
    try:
        import encodec
        import encodec.compress
        import encodec.model
    finally:
        for name in stand_ins:
            del sys.modules[name]
    return encodec


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Fresh init leaves codebooks at zero and norms at identity; give them random values too."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
            if name.endswith(("embed", "embed_avg")):
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
            elif ".norm." in name and name.endswith((".weight", ".bias")):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.3 + (name.endswith("weight")))
    return model.eval()


def original_model(preset: str, seed: int = 0) -> torch.nn.Module:
    """The original package's model for a preset, random weights."""
    encodec = import_original_encodec()
    torch.manual_seed(seed)
    if preset == "24khz":
        model = encodec.model.EncodecModel._get_model([1.5, 3.0, 6.0, 12.0, 24.0], 24_000, 1, causal=True,
                                                       model_norm="weight_norm", audio_normalize=False,
                                                       name="encodec_24khz")
    else:
        model = encodec.model.EncodecModel._get_model([3.0, 6.0, 12.0, 24.0], 48_000, 2, causal=False,
                                                       model_norm="time_group_norm", audio_normalize=True,
                                                       segment=1.0, name="encodec_48khz")
    return randomize(model, seed)
