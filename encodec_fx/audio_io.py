"""Reading and writing audio files through pedalboard.io, with clear errors and atomic writes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}


def open_audio(path: str | os.PathLike, sample_rate: int | None = None):
    """An AudioFile for reading, resampled on the fly (streaming) when `sample_rate` differs."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no audio file at {path}")
    try:
        file = AudioFile(str(path))
    except Exception as error:
        raise ValueError(f"cannot read {path} as audio ({', '.join(sorted(AUDIO_SUFFIXES))}): {error}") from None
    if sample_rate is not None and file.samplerate != sample_rate:
        return file.resampled_to(float(sample_rate))
    return file


def read_audio(path: str | os.PathLike, sample_rate: int | None = None) -> np.ndarray:
    """The whole file as float32 (channels, samples), resampled to `sample_rate` if given."""
    with open_audio(path, sample_rate) as file:
        audio = file.read(file.frames)
    if audio.shape[-1] == 0:
        raise ValueError(f"{path} holds no audio samples")
    return audio


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, overwrite: bool = False) -> None:
    """Write (channels, samples) float audio; the file appears only once complete."""
    path = Path(path)
    if path.suffix.lower() not in AUDIO_SUFFIXES:
        raise ValueError(f"cannot write {path}: expected one of {', '.join(sorted(AUDIO_SUFFIXES))}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --force to overwrite it")
    descriptor, temporary = tempfile.mkstemp(suffix=path.suffix, prefix=f".{path.stem}.", dir=path.parent or ".")
    os.close(descriptor)
    try:
        with AudioFile(temporary, "w", samplerate=sample_rate, num_channels=audio.shape[0]) as file:
            file.write(np.ascontiguousarray(audio, dtype=np.float32))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
