"""Mixtures: fresh synthesised speech over fresh rendered music."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import Clip, item_rng, normalise_peak
from .music import MusicKit, music_clip
from .speech import SpeechKit, speech_clip


def mix(foreground: np.ndarray, background: np.ndarray, snr_db: float) -> np.ndarray:
    """Foreground over background (looped or cut to its length) at `snr_db`, peak-normalised."""
    background = np.resize(background, foreground.shape)
    power = lambda audio: float(np.mean(np.square(audio))) + 1e-12  # noqa: E731
    scale = np.sqrt(power(foreground) / (power(background) * 10 ** (snr_db / 10)))
    return normalise_peak(foreground + scale * background)


def mixture_clip(speech: SpeechKit, music: MusicKit, seed: int, index: int, workdir: Path) -> Clip:
    """Fresh speech over fresh music (items of their own, not copies of corpus files)."""
    rng = item_rng(seed, "mixtures", index)
    voice = speech_clip(speech, seed + 1, index, workdir)
    backing = music_clip(music, seed + 1, 3 * index + 1, workdir)  # never index % 3 == 0: a generated song
    snr_db = round(float(rng.uniform(0, 20)), 1)
    params = {"snr_db": snr_db, "speech": voice.params, "music": backing.params}
    return Clip(f"mixtures/{index:06d}", "mixtures", mix(voice.audio, backing.audio, snr_db), params,
                f"speech: {voice.license} | music: {backing.license}", voice.packages + backing.packages)
