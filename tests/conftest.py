"""Shared helpers: the reference implementations, built with random weights."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

from encodec_fx import EncodecConfig, EncodecModel

PRESETS = {"24khz": EncodecConfig.encodec_24khz, "48khz": EncodecConfig.encodec_48khz}


def import_original_encodec():
    """Import the original `encodec` package. It imports torchaudio for file I/O only, and torchaudio
    wheels do not match our torch, so empty stand-ins are registered first (transformers is imported
    before, so it never sees them)."""
    import transformers  # noqa: F401  (must not see the stand-ins)
    for name in ("torchaudio", "torchaudio.transforms"):
        sys.modules.setdefault(name, types.ModuleType(name))
    import encodec
    import encodec.compress
    import encodec.model
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


def original_model(preset: str, seed: int = 0):
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


def transformers_model(ours: EncodecModel):
    """transformers' EncodecModel with our model's configuration and weights."""
    import transformers
    model = transformers.EncodecModel(transformers.EncodecConfig(**ours.config.to_dict()))
    model.load_state_dict(ours.state_dict())
    return model.eval()


@pytest.fixture(scope="session", params=sorted(PRESETS))
def model_trio(request, tmp_path_factory):
    """(ours, transformers', original) for one preset, all holding the same random weights; ours is
    loaded from the original's `.th` file, so the original layout is exercised too."""
    original = original_model(request.param)
    path = tmp_path_factory.mktemp("original") / f"encodec_{request.param}.th"
    torch.save(original.state_dict(), path)
    ours = EncodecModel.from_pretrained(path)
    return ours, transformers_model(ours), original


def sample_codes(lm, batch: int, num_codebooks: int, num_frames: int, seed: int = 0) -> np.ndarray:
    """Codes [B, K, T] drawn from a `PortableLM`'s own predictions, frame by frame and codebook by
    codebook (an intra-frame LM's later codebooks depend on the frame's earlier ones)."""
    rng = np.random.default_rng(seed)
    state, previous, frames = lm.initial_state(batch, num_codebooks), None, []
    for _ in range(num_frames):
        frame = lm.next_frame(previous, state)
        current = np.zeros((batch, num_codebooks), np.int64)
        for k in range(num_codebooks):
            probabilities = frame.probabilities(k).astype(np.float64)
            current[:, k] = [rng.choice(len(row), p=row / row.sum()) for row in probabilities]
            frame.observe(k, current[:, k])
        frames.append(current)
        previous = current
    return np.stack(frames, axis=-1)


def peaked(lm: torch.nn.Module) -> torch.nn.Module:
    """A random LM made to predict as sharply as a trained one (a fresh one is almost uniform),
    its intra-frame embeddings, if any, as strong as its transformer's output."""
    with torch.no_grad():
        for head in lm.linears:
            head.weight.mul_(8.0)
        for embedding in getattr(lm, "intra", []):
            embedding.weight.mul_(50.0)
    return lm.eval()
