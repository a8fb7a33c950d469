"""How close a decoded archive is to its original (`encodec-fx verify --against`): SI-SNR in dB (higher is
better) and the multi-scale mel distance (`encodec_fx.train.losses.MultiScaleMelLoss`, the training loss and
benchmarks/quality.py's measure; lower is better), both at the codec's rate, over all channels.

Both files are read as streams, `BLOCK_SECONDS` at a time, so memory does not grow with their length:
SI-SNR from running sums, the mel distance as the length-weighted mean of the blocks' distances.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

BLOCK_SECONDS = 10.0


def compare_to_original(archive: Path, original: Path, header: Any, codec: Any, lm: Any) -> dict[str, float]:
    """Decode `archive` (to a temporary file outside the output folders) and measure it against `original`,
    which must have the rate, channels and length the archive records."""
    from ..audio_io import open_audio
    from ..compress import decompress_file
    with open_audio(original) as file:
        given = (int(file.samplerate), file.num_channels, file.frames)
    wanted = (header.sample_rate, header.channels, header.audio_length)
    if given != wanted:
        raise ValueError(f"{original} is not what the archive was made from: {_shape(*given)}, "
                         f"the archive {_shape(*wanted)}")
    with tempfile.TemporaryDirectory(prefix="encodec-fx-verify-") as folder:
        decoded = Path(folder) / "decoded.wav"
        decompress_file(archive, decoded, codec, lm=lm, progress=False)
        return measure(decoded, original, codec.config.sampling_rate)


def _shape(rate: int, channels: int, frames: int) -> str:
    return f"{rate} Hz, {channels} channel(s), {frames} samples"


def measure(estimate_path: Path, reference_path: Path, rate: int) -> dict[str, float]:
    """SI-SNR (dB) and mel distance of one file against another of the same length, read at `rate`."""
    import torch

    from ..audio_io import open_audio, resampled
    from ..train.losses import MultiScaleMelLoss
    mel = MultiScaleMelLoss(rate)
    sums = np.zeros(6)  # n, Σe, Σr, Σe², Σr², Σer
    mel_total, mel_samples = 0.0, 0
    block = max(1, round(BLOCK_SECONDS * rate))
    with open_audio(estimate_path) as estimate_file, open_audio(reference_path) as reference_file, \
            torch.inference_mode():
        estimate_reader, reference_reader = resampled(estimate_file, rate), resampled(reference_file, rate)
        while True:
            estimate = estimate_reader.read(block).astype(np.float64)
            reference = reference_reader.read(block).astype(np.float64)
            n = min(estimate.shape[-1], reference.shape[-1])
            if n == 0:
                break
            estimate, reference = estimate[:, :n], reference[:, :n]
            sums += [estimate.size, estimate.sum(), reference.sum(), (estimate**2).sum(), (reference**2).sum(),
                     (estimate * reference).sum()]
            distance = mel(torch.from_numpy(estimate).float()[None], torch.from_numpy(reference).float()[None])
            mel_total += float(distance) * n
            mel_samples += n
    if not mel_samples:
        raise ValueError(f"{reference_path} holds no audio samples at {rate} Hz")
    return {"si_snr_db": round(si_snr_from_sums(*sums), 3), "mel_distance": round(mel_total / mel_samples, 4),
            "quality_rate": rate}


def si_snr_from_sums(n: float, e: float, r: float, ee: float, rr: float, er: float, epsilon: float = 1e-8) -> float:
    """`train.losses.si_snr` of the whole signals, from running sums: the same formula, with the means
    removed through the sums."""
    covariance = er - e * r / n
    reference_energy = rr - r * r / n
    estimate_energy = ee - e * e / n
    scale = covariance / (reference_energy + epsilon)
    target = scale * scale * reference_energy
    noise = max(estimate_energy - 2 * scale * covariance + target, 0.0)
    return 10 * math.log10((target + epsilon) / (noise + epsilon))
