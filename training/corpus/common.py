"""What every corpus source shares: the clip, the sample rate, licenses, system tools, per-item randomness."""

from __future__ import annotations

import shutil
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from encodec_fx.audio_io import read_audio

SAMPLE_RATE = 24_000
SILENCE_RMS = 1e-4
TOOL_PACKAGES = {"espeak-ng": "espeak-ng", "flite": "flite", "text2wave": "festival festvox-kallpc16k",
                 "fluidsynth": "fluidsynth", "dpkg": "dpkg"}

# Licenses read by hand from /usr/share/doc/<package>/copyright (copied next to the corpus on each build).
PACKAGE_LICENSES = {
    "espeak-ng-data": "GPL-3+ (voice data; the audio is the program's output)",
    "flite": "BSD-style CMU license (voices; the audio is the program's output)",
    "festvox-kallpc16k": "permissive Edinburgh/CMU license (free use and distribution)",
    "fluid-soundfont-gm": "MIT",
    "wamerican": "SCOWL license (permissive; parts public domain)",
    "fortunes-min": "BSD-3-Clause",
    "wesnoth-1.16-music": "GPL-2+",
    "asc-music": "GPL-2+",
    "klettres-data": "GPL-2+",
    "ktuberling-data": "GPL-2+",
    "hedgewars-data": "GFDL-1.3 (Data/Sounds)",
}


class MissingTool(RuntimeError):
    """A system tool or data file is absent; the message names the Debian package to install."""


class ToolCrashed(RuntimeError):
    """A synthesis or rendering tool failed on one item (espeak-ng crashes on some voice and text pairs)."""


@dataclass
class Clip:
    """One corpus file before it is written: mono audio at SAMPLE_RATE and where it came from."""
    item: str
    source: str
    audio: np.ndarray
    params: dict
    license: str
    packages: tuple[str, ...] = ()


def require_tool(tool: str) -> str:
    """The tool's path, or MissingTool naming the Debian package that provides it."""
    path = shutil.which(tool)
    if path is None:
        raise MissingTool(f"{tool} not found: apt-get install {TOOL_PACKAGES[tool]}")
    return path


def require_file(path: Path, package: str) -> Path:
    """`path` if it exists, or MissingTool naming the Debian package that provides it."""
    if not path.exists():
        raise MissingTool(f"{path} not found: apt-get install {package}")
    return path


def run_tool(arguments: list[str], stdin: str | None = None) -> str:
    """Run a tool and return its stdout; a failure is one line with the end of its stderr."""
    result = subprocess.run(arguments, input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        raise ToolCrashed(f"{Path(arguments[0]).name} failed ({result.returncode}): {result.stderr.strip()[-300:]}")
    return result.stdout


def item_rng(seed: int, source: str, index: int) -> np.random.Generator:
    """Randomness for one item, independent of every other item and of the build order."""
    return np.random.default_rng([seed, zlib.crc32(source.encode()), index])


def load_mono(path: Path) -> np.ndarray:
    """A file as mono float32 samples at SAMPLE_RATE."""
    return read_audio(path, SAMPLE_RATE).mean(axis=0).astype(np.float32)


def is_silent(audio: np.ndarray) -> bool:
    return audio.size == 0 or float(np.sqrt(np.mean(np.square(audio)))) < SILENCE_RMS


def normalise_peak(audio: np.ndarray, peak_db: float = -1.0) -> np.ndarray:
    """Scale so the largest sample sits at `peak_db` dBFS (silence stays silence)."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return audio if peak == 0.0 else (audio * (10 ** (peak_db / 20) / peak)).astype(np.float32)
