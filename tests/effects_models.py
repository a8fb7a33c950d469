"""Tiny EnCodec models with random weights and codebooks, shared by the effects tests."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from encodec_fx import EncodecConfig, EncodecModel

from conftest import randomize


@lru_cache(maxsize=None)
def tiny_model(preset: str = "24khz") -> EncodecModel:
    """The same weights whatever ran before in the process: the convolutions' initial weights come from torch's
    global generator, and a draw left by an earlier test once made the packet-loss demo's model nearly silent."""
    make = EncodecConfig.encodec_24khz if preset == "24khz" else EncodecConfig.encodec_48khz
    with torch.random.fork_rng():  # the caller's random state is left as it was
        torch.manual_seed(0)
        model = EncodecModel(make(num_filters=4, num_lstm_layers=1))
    return randomize(model)


def noise(*shape: int, seed: int = 0, dtype: type = np.float32) -> np.ndarray:
    """Quiet white noise: audio-like input that exercises every code."""
    return (np.random.default_rng(seed).standard_normal(shape) * 0.1).astype(dtype)
