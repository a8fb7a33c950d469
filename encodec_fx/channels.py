"""How the caller's channels map onto the model's input (batch, model_channels, samples), for the
effects, archives and LM training alike.

A mono model codes every channel independently, all in one batch, so any channel count works.
A stereo model codes stereo as stereo; mono is duplicated to stereo and the two decoded channels
are averaged back to mono; more than two channels have no stereo meaning and are refused.
"""

from __future__ import annotations

import numpy as np

from .config import EncodecConfig


def to_model_channels(audio: np.ndarray, config: EncodecConfig) -> np.ndarray:
    """(channels, samples) → (batch, model_channels, samples)."""
    channels = audio.shape[0]
    if config.audio_channels == 1:
        return audio[:, np.newaxis, :]
    if config.audio_channels == 2 and channels <= 2:
        return np.broadcast_to(audio, (2, audio.shape[1]))[np.newaxis].copy()
    raise ValueError(f"audio has {channels} channels, but this {config.audio_channels}-channel model codes "
                     f"only 1 or {config.audio_channels}: mix down or split the channels first")


def from_model_channels(audio: np.ndarray, num_channels: int) -> np.ndarray:
    """(batch, model_channels, samples) → (num_channels, samples), inverting `to_model_channels`."""
    if audio.shape[1] == 1:
        return audio[:, 0, :]
    if num_channels == 1:
        return audio.mean(axis=1)
    return audio[0]
