"""Training audio: a folder of files held in memory at the codec's rate, cut into random segments.

Files are split into training and validation sets by a hash of their names (as for the LM), so adding
files never moves an old one across the split. The whole folder is decoded once at start-up, which
suits the small corpora this trainer is meant for; a large corpus would want lazy reading.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..audio_io import read_audio


def load_clip(path: Path, sample_rate: int, channels: int) -> np.ndarray:
    """(channels, samples) float32 at `sample_rate`: mono codecs hear the mix, stereo ones get mono copied."""
    audio = read_audio(path, sample_rate)
    if channels == 1:
        return audio.mean(axis=0, keepdims=True)
    if audio.shape[0] == 1:
        return np.repeat(audio, channels, axis=0)
    return audio[:channels]


def fit_length(clip: np.ndarray, length: int, start: int = 0) -> np.ndarray:
    """`length` samples from `start`, zero-padded at the end when the clip is short."""
    piece = clip[:, start: start + length]
    return np.pad(piece, ((0, 0), (0, length - piece.shape[-1])))


def random_segments(clips: list[np.ndarray], count: int, length: int, rng: np.random.Generator) -> torch.Tensor:
    """(count, channels, length): clips picked in proportion to their length, at random offsets."""
    sizes = np.array([max(1, clip.shape[-1] - length + 1) for clip in clips], dtype=float)
    picks = rng.choice(len(clips), size=count, p=sizes / sizes.sum())
    return torch.from_numpy(np.stack([fit_length(clips[i], length, int(rng.integers(0, sizes[i]))) for i in picks]))


def centre_segments(clips: list[np.ndarray], length: int) -> torch.Tensor:
    """(clips, channels, length): the middle of each clip, the fixed validation set."""
    return torch.from_numpy(np.stack([fit_length(clip, length, max(0, (clip.shape[-1] - length) // 2))
                                      for clip in clips]))
