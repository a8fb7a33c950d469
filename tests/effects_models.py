"""Tiny EnCodec models with random weights and codebooks, shared by the effects tests."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from encodec_fx import EncodecConfig, EncodecModel

from conftest import randomize


@lru_cache(maxsize=None)
def tiny_model(preset: str = "24khz") -> EncodecModel:
    make = EncodecConfig.encodec_24khz if preset == "24khz" else EncodecConfig.encodec_48khz
    return randomize(EncodecModel(make(num_filters=4, num_lstm_layers=1)))


def noise(*shape: int, seed: int = 0, dtype: type = np.float32) -> np.ndarray:
    """Quiet white noise: audio-like input that exercises every code."""
    return (np.random.default_rng(seed).standard_normal(shape) * 0.1).astype(dtype)
