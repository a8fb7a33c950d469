"""Synthetic training signals: steady tones, harmonic complexes, sweeps and noise bands.

Why: a codec trained on speech and music alone learnt notches. Steady tones come back from the
autoencoder (without its quantiser) 15 to 70 dB down at some frequencies between 1 and 3 kHz while
their neighbours pass (training/LOG.md, issue 16): real audio rarely holds one pure frequency for long,
so nothing taught the strided convolutions to keep every frequency. A share of each batch made of such
signals, at random frequencies, levels and phases, does. They are drawn from the trainer's generator, so
a resumed run draws the same ones.

Each signal sits on pink noise 20 to 40 dB below it. Measured without it (LOG.md): on pure tones the
log-mel term, which compares every mel band down to its floor, punishes any artefact in the bands a tone
leaves empty more than it rewards the tone, and 500 steps with a quarter of each batch such tones took
steady tones above 1 kHz from 18–25 dB down to 35–40 dB down. Real audio never leaves bands empty.
"""

from __future__ import annotations

import numpy as np
import torch

from .spectral_gate import pink_noise

KINDS = ("tones", "harmonics", "sweep", "noise band")
LOWEST_HZ = 50.0
LEVELS_DBFS = (-40.0, -10.0)  # RMS of each signal, drawn uniformly in dB
FLOOR_DB = (-40.0, -20.0)  # the pink noise under each signal, relative to it
PEAK = 0.99


def synthetic_segments(count: int, length: int, rate: int, channels: int, rng: np.random.Generator
                       ) -> torch.Tensor:
    """(count, channels, length) float32 signals of random `KINDS`, each channel the same."""
    time = np.arange(length) / rate
    highest = 0.45 * rate
    signals = []
    for _ in range(count):
        kind = KINDS[int(rng.integers(len(KINDS)))]
        if kind == "tones":
            frequencies = _log_uniform(rng, LOWEST_HZ, highest, int(rng.integers(1, 5)))
            signal = sum(rng.uniform(0.2, 1) * np.sin(2 * np.pi * f * time + rng.uniform(0, 2 * np.pi))
                         for f in frequencies)
        elif kind == "harmonics":
            fundamental = float(_log_uniform(rng, 60.0, 1000.0, 1)[0])
            orders = np.arange(1, int(highest // fundamental) + 1)
            amplitudes = orders ** -rng.uniform(0.5, 2.0)
            phases = rng.uniform(0, 2 * np.pi, len(orders))
            signal = (amplitudes[:, None] * np.sin(2 * np.pi * fundamental * orders[:, None] * time
                                                   + phases[:, None])).sum(0)
        elif kind == "sweep":
            low, high = np.sort(_log_uniform(rng, LOWEST_HZ, highest, 2))
            start, end = (low, high) if rng.random() < 0.5 else (high, low)
            duration = time[-1] if length > 1 else 1.0
            phase = 2 * np.pi * start * duration / np.log(end / start) * (np.exp(time / duration
                                                                              * np.log(end / start)) - 1)
            signal = np.sin(phase + rng.uniform(0, 2 * np.pi))
        else:
            low = float(_log_uniform(rng, LOWEST_HZ, highest / 2, 1)[0])
            spectrum = np.fft.rfft(rng.standard_normal(length))
            frequencies = np.fft.rfftfreq(length, 1 / rate)
            spectrum[(frequencies < low) | (frequencies >= 2 * low)] = 0
            signal = np.fft.irfft(spectrum, length)
        floor = pink_noise(length / rate, rate, seed=rng)
        signal = signal / _rms(signal) + floor * (10 ** (rng.uniform(*FLOOR_DB) / 20) / _rms(floor))
        signal = signal * (10 ** (rng.uniform(*LEVELS_DBFS) / 20) / _rms(signal))
        signal = signal * min(1.0, PEAK / (np.abs(signal).max() + 1e-12))  # many harmonics in phase would clip
        signals.append(np.broadcast_to(signal, (channels, length)))
    return torch.from_numpy(np.stack(signals).astype(np.float32))


def _rms(signal: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(signal)))) + 1e-12


def _log_uniform(rng: np.random.Generator, low: float, high: float, count: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(low), np.log(high), count))
