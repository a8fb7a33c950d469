"""Recordings from Debian packages: the audio files a package installs, and 10-second excerpts of them.

SuperTuxKart's data, the ALSA and freedesktop sound files and recordings shipped inside Python packages are
reserved for independent evaluation, so that a model can be evaluated on audio it has never seen: they are
refused here, as packages and as paths, before anything is read.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile

from encodec_fx.audio_io import AUDIO_SUFFIXES

from .common import PACKAGE_LICENSES, SAMPLE_RATE, Clip, is_silent, require_tool, run_tool

RECORDING_PACKAGES = ("wesnoth-1.16-music", "asc-music")

# Reserved for independent evaluation: never training or validation material.
RESERVED_PACKAGES = ("supertuxkart", "supertuxkart-data", "alsa-utils", "sound-theme-freedesktop")
RESERVED_PATH_PARTS = ("supertuxkart", "/usr/share/sounds/alsa", "/usr/share/sounds/freedesktop",
                       "site-packages", "dist-packages")


class ReservedSource(ValueError):
    """A source reserved for independent evaluation was offered as training material."""


def reserved_reason(path: Path | str, package: str = "") -> str | None:
    """Why `path` (from `package`) is reserved for independent evaluation, or None when it may be used."""
    if package in RESERVED_PACKAGES:
        return f"package {package} is reserved for independent evaluation"
    text = str(path).lower()
    part = next((part for part in RESERVED_PATH_PARTS if part in text), None)
    return None if part is None else f"{path} is reserved for independent evaluation ({part})"


def refuse_reserved(path: Path | str, package: str = "") -> None:
    """Raise ReservedSource when `path` or `package` is reserved for evaluation."""
    reason = reserved_reason(path, package)
    if reason:
        raise ReservedSource(reason)


def package_audio_files(package: str) -> list[Path]:
    """Audio files installed by a Debian package, after refusing reserved packages and paths."""
    refuse_reserved("", package)
    listing = run_tool([require_tool("dpkg"), "-L", package]).splitlines()
    files = sorted(Path(line) for line in listing if Path(line).suffix.lower() in AUDIO_SUFFIXES)
    for path in files:
        refuse_reserved(path, package)
    return files


def audio_seconds(path: Path) -> float:
    with AudioFile(str(path)) as file:
        return file.frames / file.samplerate


def read_excerpt(path: Path, start_seconds: float, seconds: float) -> np.ndarray:
    """`seconds` of `path` from `start_seconds`, mono at SAMPLE_RATE."""
    with AudioFile(str(path)) as file:
        reader = file.resampled_to(float(SAMPLE_RATE))
        reader.seek(int(start_seconds * SAMPLE_RATE))
        return reader.read(int(seconds * SAMPLE_RATE)).mean(axis=0).astype(np.float32)


def excerpt_plan(files: list[Path], seed: int, seconds: float) -> list[tuple[Path, float]]:
    """Every whole `seconds`-long excerpt of every file, in a seeded order."""
    plan = [(path, start * seconds) for path in files for start in range(int(audio_seconds(path) // seconds))]
    order = np.random.default_rng([seed, zlib.crc32(b"recordings")]).permutation(len(plan))
    return [plan[i] for i in order]


def recording_owners(packages: tuple[str, ...]) -> dict[Path, str]:
    """Each usable recording of the packages and the package it comes from; reserved or unlicensed ones fail."""
    for package in packages:
        refuse_reserved("", package)
        if package not in PACKAGE_LICENSES:
            raise ValueError(f"no license recorded for {package}: read /usr/share/doc/{package}/copyright "
                             "and add it to PACKAGE_LICENSES")
    return {path: package for package in packages for path in package_audio_files(package)}


def recording_clips(owners: dict[Path, str], seed: int, seconds: float = 10.0) -> Iterator[Clip]:
    """Non-silent excerpts of the recordings; the split item is the whole track, so no track straddles it."""
    for path, start in excerpt_plan(sorted(owners), seed, seconds):
        audio = read_excerpt(path, start, seconds)
        if not is_silent(audio):
            package = owners[path]
            yield Clip(f"recordings/{package}/{path.name}", "recordings", audio,
                       {"file": str(path), "start_seconds": start}, PACKAGE_LICENSES[package], (package,))
