"""Reading and writing audio files through pedalboard.io, with clear errors and atomic writes."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile

from entropy.atomic import check_writable, replacing

from .resample import ResampledReader

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}


def open_audio(path: str | os.PathLike) -> AudioFile:
    """An AudioFile open for reading, or a one-line error saying why it cannot be."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no audio file at {path}")
    check_wav_complete(path)
    try:
        return AudioFile(str(path))
    except Exception as error:
        raise ValueError(f"cannot read {path} as audio ({', '.join(sorted(AUDIO_SUFFIXES))}): {error}") from None


def check_wav_complete(path: Path) -> None:
    """Refuse a WAV file cut short (an interrupted copy or download): pedalboard reads the length
    its header promises and fills what is missing with silence."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        head = file.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return  # not a plain RIFF WAV (RF64 and other formats are left to the decoder)
        offset = 12
        while offset + 8 <= size:
            file.seek(offset)
            chunk, length = file.read(4), int.from_bytes(file.read(4), "little")
            if chunk == b"data":
                missing = offset + 8 + length - size
                if missing > 0 and length != 0xFFFFFFFF:  # all ones: length unknown, as a live recorder writes
                    raise ValueError(f"{path} is cut short: its header promises {length} bytes of samples, "
                                     f"{missing} of them are missing")
                return
            offset += 8 + length + length % 2  # chunks are padded to an even length


def resampled(file: AudioFile, sample_rate: int) -> AudioFile | ResampledReader:
    """The file read at `sample_rate` (the package's resampler, `encodec_fx.resample`, when the rates differ)."""
    return file if file.samplerate == sample_rate else ResampledReader(file, sample_rate)


def read_audio(path: str | os.PathLike, sample_rate: int | None = None) -> np.ndarray:
    """The whole file as float32 (channels, samples), resampled to `sample_rate` if given."""
    with open_audio(path) as file:
        reader = file if sample_rate is None else resampled(file, sample_rate)
        if file.frames == 0:  # checked first: pedalboard refuses to read 0 frames, with a misleading message
            raise ValueError(f"{path} holds no audio samples")
        return reader.read(reader.frames)  # at least one sample at any rate: the length is rounded up


def check_destination(path: str | os.PathLike, overwrite: bool, suffixes: set[str] | None = None,
                      source: str | os.PathLike | None = None) -> Path:
    """An output path that can be written: checked before any work (a temporary is made and removed beside
    it), so a long job does not fail at its end. `suffixes`, if given, are the accepted file types; `source`
    is the input, which the output must never replace, overwritten or not. The write itself refuses a file
    that appears meanwhile (`entropy.atomic.replacing`)."""
    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise ValueError(f"cannot write {path}: expected one of {', '.join(sorted(suffixes))}")
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder; give a file name")
    if isinstance(source, (str, os.PathLike)) and path.exists() and Path(source).exists() \
            and os.path.samefile(path, source):
        raise ValueError(f"cannot write {path}: it is the input file; give another output name")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: there is no folder {path.parent}")
    check_writable(path)  # permission, read-only or full: said now (and stale temporaries of a killed run go)
    return path


def write_options(path: str | os.PathLike) -> dict:
    """How an output file is written: WAV as 32-bit float (the codec's output is not rounded to 16
    bits), other formats with pedalboard's defaults."""
    return {"bit_depth": 32} if Path(path).suffix.lower() == ".wav" else {}


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, overwrite: bool = False) -> None:
    """Write (channels, samples) float audio (see `write_options`); the file appears only once complete."""
    path = check_destination(path, overwrite, AUDIO_SUFFIXES)
    with replacing(path, overwrite=overwrite) as (temporary,):
        with AudioFile(str(temporary), "w", samplerate=sample_rate, num_channels=audio.shape[0],
                       **write_options(path)) as file:
            file.write(np.ascontiguousarray(audio, dtype=np.float32))


def audio_files(folder: str | os.PathLike) -> list[Path]:
    """Audio files under `folder`, searched recursively, in a stable order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no audio folder at {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise ValueError(f"{folder} holds no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})")
    return files


def is_held_out(path: Path, percent: int) -> bool:
    """A file's side of a training/held-out split, by a hash of its name: adding files never moves
    an old one across the split."""
    return zlib.crc32(path.name.encode()) % 100 < percent
